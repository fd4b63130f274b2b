"""powerbus nodes: the SDK every node is written with (``powerbus.nodes.sdk``), the built-in
nodes (``powerbus.nodes.echo``, ...; listed in ``powerbus.nodes.sdk.kinds``) and the pytest
plugin that runs them as real processes (``powerbus.nodes.testing.plugin``)."""
