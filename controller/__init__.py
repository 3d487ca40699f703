"""The autoscaling controller: pure policy, depth source, scaler, Lease election, kopf glue."""
