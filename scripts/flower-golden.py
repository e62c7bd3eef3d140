#!/usr/bin/env python3
"""Golden vectors for fedroute's Flower conformance tests, made with the installed flwr==1.42.0.

Writes Tests/Federation/FedRouteFlowerTests/Fixtures/flower-golden.json: `.npy` bytes of arrays,
object ids (and bytes) of ArrayRecord / MetricRecord / ConfigRecord / RecordDict / Message as
Flower deflates them, and a signed header set of a fixed P-256 key. Run with the venv that has flwr:
  .venv-flwr/bin/python scripts/flower-golden.py
"""
import base64
import io
import json
import os

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
import flwr
from flwr.supercore.task_identity import TaskIdentity

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Federation", "FedRouteFlowerTests", "Fixtures", "flower-golden.json")


def npy(a: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue().hex()


arrays = {
    "matrix": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "vector": np.array([1.5, -2.25, 1e-8], dtype=np.float32),
    "scalar": np.array(3.0, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "tensor3": np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
}
golden = {"flwr": flwr.__version__, "npy": {k: {"shape": list(v.shape), "values": v.ravel().tolist(), "bytes": npy(v)} for k, v in arrays.items()}}

record_arrays = ArrayRecord({"trunk.0.weight": Array(arrays["matrix"]), "heads.bias": Array(arrays["vector"]),
                             "copy": Array(arrays["matrix"])})
metrics = MetricRecord({"num-examples": 120, "train_loss": 0.3125, "big": 2**63 + 5, "losses": [0.5, 0.25]})
config = ConfigRecord({"server-round": 3, "lr": 0.01, "name": "fedroute ✓", "flag": True, "blob": b"\x00\x01\xff",
                       "names": ["a", "b"], "ints": [1, -2]})
content = RecordDict({"arrays": record_arrays, "metrics": metrics, "config": config})
TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 7, 1, 11
message = Message(content=content, dst_node_id=42, message_type="train")
md = message.metadata
md.group_id = "3"
md.created_at = 1764720000.25
md.ttl = 43200.0

golden["objects"] = {
    "ArrayRecord": {"id": record_arrays.object_id, "bytes": record_arrays.deflate().hex()},
    "MetricRecord": {"id": metrics.object_id, "bytes": metrics.deflate().hex()},
    "ConfigRecord": {"id": config.object_id, "bytes": config.deflate().hex()},
    "RecordDict": {"id": content.object_id, "bytes": content.deflate().hex()},
    "Message": {"id": message.object_id, "bytes": message.deflate().hex()},
}
golden["array_ids"] = {name: arr.object_id for name, arr in record_arrays.items()}
golden["message_metadata"] = {"run_id": 7, "src_node_id": 1, "dst_node_id": 42, "group_id": "3", "created_at": 1764720000.25,
                              "ttl": 43200.0, "message_type": "train", "src_task_id": 11}

key = ec.derive_private_key(0x5EED_F1_0E2, ec.SECP256R1())
pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
timestamp = "2026-12-03T01:02:03.456789+00:00"
signature = key.sign(timestamp.encode("ascii"), ec.ECDSA(hashes.SHA256()))
golden["signature"] = {
    "private_scalar": format(key.private_numbers().private_value, "064x"),
    "flwr-public-key": base64.b64encode(pem).decode(),
    "flwr-timestamp": timestamp,
    "flwr-signature": base64.b64encode(signature).decode(),
}
with open(OUT, "w") as f:
    json.dump(golden, f, indent=1, ensure_ascii=True)
print("wrote", os.path.normpath(OUT))
