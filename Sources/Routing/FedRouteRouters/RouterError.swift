/// Errors from training, using or loading routers.
public enum RouterError: Error, CustomStringConvertible, Equatable {
    case dimensionMismatch(expected: Int, got: Int)
    case nonFiniteInput
    case noTrainingData(String)
    case invalidConfiguration(String)
    case modelMismatch(expected: [String], got: [String])
    case diverged(String)
    case invalidLambda(Double)

    public var description: String {
        switch self {
        case .dimensionMismatch(let e, let g): return "features have dimension \(g), the router expects \(e)"
        case .nonFiniteInput: return "features contain NaN or infinity"
        case .noTrainingData(let why): return "no training data: \(why)"
        case .invalidConfiguration(let why): return "invalid configuration: \(why)"
        case .modelMismatch(let e, let g): return "models \(g) do not match the router's \(e)"
        case .diverged(let why): return "training diverged: \(why)"
        case .invalidLambda(let l): return "λ must be a finite number ≥ 0, not \(l)"
        }
    }
}
