"""The node lifecycle controller: Ready from the node handler's Lease, clock skew from it too."""
