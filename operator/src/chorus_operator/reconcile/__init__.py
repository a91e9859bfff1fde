"""The reconcile layer: read the cluster, hand frozen inputs to the model, apply, report."""
