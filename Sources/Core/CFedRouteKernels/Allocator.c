// glibc's allocator settings (mallopt is declared in <malloc.h>, which Swift's Glibc module does not
// export). Used by FedRouteNumerics.AllocatorTuning.
#include "CFedRouteKernels.h"
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int fr_malloc_tune(int mmap_threshold, int trim_threshold, int top_pad) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
        && mallopt(M_TOP_PAD, top_pad) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    (void)top_pad;
    return 0;
#endif
}
