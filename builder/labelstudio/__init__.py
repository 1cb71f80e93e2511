"""Everything that talks to Label Studio: the local server, the labeling config, push and pull."""
