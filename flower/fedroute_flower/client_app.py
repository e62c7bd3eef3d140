"""A placeholder ClientApp: Flower apps must name one, but fedroute's nodes are Swift processes
(`fedroute flower-node`) that answer the Fleet API themselves and never run Python code."""
from flwr.app import Message
from flwr.clientapp import ClientApp

app = ClientApp()


def _refuse(msg: Message, context) -> Message:
    raise RuntimeError("fedroute federations run `fedroute flower-node` SuperNodes (Swift); "
                       "this Python ClientApp is not meant to run")


@app.train()
def train(msg: Message, context) -> Message:
    return _refuse(msg, context)


@app.evaluate()
def evaluate(msg: Message, context) -> Message:
    return _refuse(msg, context)
