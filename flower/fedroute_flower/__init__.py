"""fedroute on Flower: the ServerApp side (the nodes are `fedroute flower-node`, in Swift)."""
