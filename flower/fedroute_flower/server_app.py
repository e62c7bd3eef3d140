"""fedroute's ServerApp: runs fedroute's federation on a Flower SuperLink.

Thin by design. fedroute's own logic runs in `fedroute flower-bridge` (Swift), which this app starts
and talks to in JSON lines. The bridge runs the setup passes (federated IDF, descriptions, cost
moments) and the two-pass k-means by asking clients questions, which this app delivers as
`query.fedroute` messages through the Grid; MLP and MF rounds are run here by Flower's own strategy
(FedAvg, FedProx or FedAdam, optionally inside Flower's server-side DP wrapper with fixed clipping),
and the final arrays go back to the bridge, which writes the router files and summary.json.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import threading
import time
from logging import INFO, WARNING

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp import strategy as flower_strategies

app = ServerApp()
QUERY = "query.fedroute"


class Bridge:
    """The `fedroute flower-bridge` process: its requests arrive on a queue, answers go to its stdin."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file)
        self.requests: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.requests.put(json.loads(line))
            except json.JSONDecodeError:
                log(WARNING, "fedroute bridge wrote a line that is not JSON: %r", line[:200])
        self.requests.put(None)

    def answer(self, seq: int, **fields) -> None:
        self.proc.stdin.write((json.dumps({"seq": seq, **fields}) + "\n").encode())
        self.proc.stdin.flush()


class PromptGrid:
    """The ServerApp's Grid with a `send_and_receive` that looks for replies every `interval` seconds.

    flwr's own waits 3 s between pulls, which puts a 3 s floor under every round and every question;
    the strategies call it through this proxy (everything else is the Grid's own).
    """

    def __init__(self, grid: Grid, interval: float = 0.1) -> None:
        self._grid, self._interval = grid, interval

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout: float | None = None):
        ids = {i for i in self._grid.push_messages(messages) if i}
        end = time.time() + (timeout if timeout is not None else 0.0)
        replies: list[Message] = []
        while ids and (timeout is None or time.time() < end):
            got = list(self._grid.pull_messages(ids))
            replies.extend(got)
            ids.difference_update(m.metadata.reply_to_message_id for m in got)
            if ids:
                time.sleep(self._interval)
        return replies


class Nodes:
    """Which SuperNode holds which fedroute client (a restarted node may come back under a new id)."""

    def __init__(self, grid: Grid, timeout: float) -> None:
        self.grid, self.timeout = grid, timeout
        self.client_of: dict[int, str] = {}

    def node_of(self, client: str) -> int | None:
        ids = [n for n, c in self.client_of.items() if c == client]
        return ids[-1] if ids else None

    def refresh(self) -> None:
        online = set(self.grid.get_node_ids())
        for gone in set(self.client_of) - online:
            del self.client_of[gone]
        new = sorted(online - set(self.client_of))
        if not new:
            return
        hello = ConfigRecord({"op": "hello"})
        messages = [Message(content=RecordDict({"fedroute": hello}), dst_node_id=n, message_type=QUERY) for n in new]
        for reply in self.grid.send_and_receive(messages, timeout=min(self.timeout, 60.0)):
            if reply.has_error():
                log(WARNING, "node %s did not say which client it holds: %s", reply.metadata.src_node_id, reply.error.reason)
                continue
            self.client_of[reply.metadata.src_node_id] = str(reply.content["fedroute"]["client-id"])


def fedroute_query(node: int, fields: dict) -> Message:
    return Message(content=RecordDict({"fedroute": ConfigRecord(fields)}), dst_node_id=node, message_type=QUERY)


def make_strategy(cfg, participation: float, clients: int, report: dict, nodes: Nodes):
    name = str(cfg["strategy"]).lower()
    per_round = max(1, round(participation * clients))
    common = dict(fraction_train=participation, fraction_evaluate=float(cfg["fraction-evaluate"]),
                  min_train_nodes=per_round, min_evaluate_nodes=1, min_available_nodes=clients)
    if name == "fedavg":
        strategy = flower_strategies.FedAvg(**common)
    elif name == "fedprox":
        strategy = flower_strategies.FedProx(**common, proximal_mu=float(cfg["proximal-mu"]))
    elif name == "fedadam":
        strategy = flower_strategies.FedAdam(**common, eta=float(cfg["fedadam-eta"]), eta_l=float(cfg["fedadam-eta-l"]))
    else:
        raise ValueError(f"strategy {name!r} is not fedavg, fedprox or fedadam")
    noise = float(cfg["dp-noise-multiplier"])
    if noise > 0:
        strategy = flower_strategies.DifferentialPrivacyServerSideFixedClipping(
            strategy, noise_multiplier=noise, clipping_norm=float(cfg["dp-clipping-norm"]), num_sampled_clients=per_round)
    # Record what every round did for fedroute's round report (Flower logs it; fedroute keeps it).
    configure, aggregate = strategy.configure_train, strategy.aggregate_train

    def configure_train(server_round, arrays, config, grid):
        messages = list(configure(server_round, arrays, config, grid))
        client = lambda node: nodes.client_of.get(node, str(node))
        report[server_round] = {"round": server_round, "start": time.time(),
                                "sampled": [client(m.metadata.dst_node_id) for m in messages],
                                # A reply the SuperLink writes itself (e.g. "Node Unavailable") comes from
                                # the SuperLink, not the node: replies are matched by the instruction's id.
                                "_by_instruction": {m.object_id: client(m.metadata.dst_node_id) for m in messages}}
        return messages

    def aggregate_train(server_round, replies):
        replies = list(replies)
        r = report[server_round]
        by_instruction = r.pop("_by_instruction")
        name_of = lambda m: by_instruction.get(m.metadata.reply_to_message_id) or nodes.client_of.get(m.metadata.src_node_id, str(m.metadata.src_node_id))
        r["aggregated"] = [name_of(m) for m in replies if not m.has_error()]
        r["failures"] = {name_of(m): m.error.reason for m in replies if m.has_error()}
        for missing in set(r["sampled"]) - set(r["aggregated"]) - set(r["failures"]):
            r["failures"][missing] = f"no reply within {cfg['round-timeout']} s"
        valid = [m for m in replies if not m.has_error()]
        examples = [int(m.content["metrics"]["num-examples"]) for m in valid]
        if examples and sum(examples) > 0:
            losses = [float(m.content["metrics"].get("train_loss", 0.0)) for m in valid]
            r["train_loss"] = sum(e * l for e, l in zip(examples, losses)) / sum(examples)
            r["num_examples"] = sum(examples)
        r["seconds"] = time.time() - r.pop("start")
        return aggregate(server_round, replies)

    strategy.configure_train, strategy.aggregate_train = configure_train, aggregate_train
    return strategy


def run_rounds(request: dict, cfg, grid: Grid, nodes: Nodes, clients: int) -> dict:
    names = request["names"]
    src = request["arrays_dir"]
    initial = ArrayRecord({n: Array(np.load(os.path.join(src, f"{i:04d}.npy"))) for i, n in enumerate(names)})
    plan = ConfigRecord({"fedroute.plan": base64.b64decode(request["plan"])})
    report: dict = {}
    nodes.refresh()
    strategy = make_strategy(cfg, float(request["participation"]), clients, report, nodes)
    result = strategy.start(grid=grid, initial_arrays=initial, num_rounds=int(request["rounds"]),
                            timeout=float(cfg["round-timeout"]), train_config=plan, evaluate_config=ConfigRecord(dict(plan)))
    nodes.refresh()
    if int(request["rounds"]) > 0 and not any(r.get("aggregated") for r in report.values()):
        raise RuntimeError(f"no round of {request['family']} aggregated any update: {[r.get('failures') for r in report.values()]}")
    final = result.arrays if len(result.arrays) else initial
    out = src.rstrip("/") + "-final"
    os.makedirs(out, exist_ok=True)
    for i, n in enumerate(names):
        np.save(os.path.join(out, f"{i:04d}.npy"), final[n].numpy().astype(np.float32))
    return {"arrays_dir": out, "rounds": [report[k] for k in sorted(report)]}


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    grid = PromptGrid(grid, float(cfg["reply-poll-interval"]))
    timeout = float(cfg["round-timeout"])
    config_path = str(cfg["federation-config"])
    work = os.path.join(os.path.dirname(os.path.abspath(config_path)), "flower")
    os.makedirs(work, exist_ok=True)
    bridge = Bridge([str(cfg["fedroute-binary"]), "flower-bridge", "--config", config_path, "--work", work],
                    os.path.join(work, "bridge.log"))
    nodes = Nodes(grid, timeout)
    clients: list[str] = []
    pending: dict[str, dict] = {}  # Flower message id -> the bridge's ask
    while True:
        try:
            req = bridge.requests.get(timeout=0.05 if pending else None)
        except queue.Empty:
            req = {}
        if req is None:
            raise RuntimeError(f"the fedroute bridge exited (status {bridge.proc.wait()}); see {work}/bridge.log")
        op = req.get("op")
        if op == "ask":
            send_ask(grid, nodes, req, pending, bridge)
        elif op == "wait-for-clients":
            clients = req["clients"]
            deadline = time.time() + float(req.get("timeout") or 300)
            while True:
                nodes.refresh()
                missing = [c for c in clients if nodes.node_of(c) is None]
                if not missing:
                    break
                if time.time() > deadline:
                    bridge.answer(req["seq"], error=f"clients never came online: {missing}")
                    break
                time.sleep(1.0)
            if not missing:
                log(INFO, "fedroute: every client is online: %s", {c: nodes.node_of(c) for c in clients})
                bridge.answer(req["seq"], nodes={c: nodes.node_of(c) for c in clients})
        elif op == "fedavg":
            try:
                bridge.answer(req["seq"], **run_rounds(req, cfg, grid, nodes, len(clients)))
            except Exception as e:  # the bridge reports it and stops
                bridge.answer(req["seq"], error=f"{type(e).__name__}: {e}")
        elif op == "finish":
            outcome = base64.b64decode(req["outcome"])
            nodes.refresh()
            messages = [fedroute_query(n, {"op": "finish", "outcome": outcome}) for n in nodes.client_of]
            replies = list(grid.send_and_receive(messages, timeout=min(timeout, 60.0)))
            log(INFO, "fedroute: %d of %d nodes took the routers", sum(not r.has_error() for r in replies), len(messages))
            bridge.answer(req["seq"])
            with open(req["summary"]) as f:
                summary = json.load(f)
            log(INFO, "fedroute: validation AUC %s; routers %s", summary.get("validationAUC"), summary.get("routerFiles"))
            break
        poll_asks(grid, nodes, pending, bridge, timeout)
    bridge.proc.wait(timeout=60)


def send_ask(grid: Grid, nodes: Nodes, req: dict, pending: dict, bridge: Bridge) -> None:
    node = nodes.node_of(req["client"])
    if node is None:
        nodes.refresh()
        node = nodes.node_of(req["client"])
    if node is None:
        bridge.answer(req["seq"], error=f"client {req['client']} is not online")
        return
    fields = {"op": "request", "request": base64.b64decode(req["request"])}
    if req.get("encoder"):
        fields["encoder"] = base64.b64decode(req["encoder"])
    [message_id] = list(grid.push_messages([fedroute_query(node, fields)]))
    req["sent"] = time.time()  # a retry to a restarted node gets its own timeout
    req["node"] = node
    pending[message_id] = req


def poll_asks(grid: Grid, nodes: Nodes, pending: dict, bridge: Bridge, timeout: float) -> None:
    if not pending:
        return
    for reply in grid.pull_messages(list(pending)):
        req = pending.pop(reply.metadata.reply_to_message_id, None)
        if req is None:
            continue
        if reply.has_error():
            retry(grid, nodes, req, pending, bridge, reply.error.reason)
        else:
            bridge.answer(req["seq"], reply=base64.b64encode(reply.content["fedroute"]["reply"]).decode())
    for message_id, req in list(pending.items()):
        if time.time() - req["sent"] > timeout:
            del pending[message_id]
            retry(grid, nodes, req, pending, bridge, f"no reply within {timeout} s")


def retry(grid: Grid, nodes: Nodes, req: dict, pending: dict, bridge: Bridge, why: str) -> None:
    """A failed question is asked again once the client's node is back under another id (a restart)."""
    nodes.refresh()
    node = nodes.node_of(req["client"])
    if node is not None and node != req["node"] and req.get("retries", 0) < 3:
        req["retries"] = req.get("retries", 0) + 1
        log(WARNING, "fedroute: %s failed on node %s (%s); asking its new node %s", req["client"], req["node"], why, node)
        send_ask(grid, nodes, req, pending, bridge)
    else:
        bridge.answer(req["seq"], error=f"{req['client']}: {why}")
