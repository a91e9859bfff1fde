"""``chorus dev``: working on a domain locally (its manifests, its topology, running it).

- :mod:`.manifests`: a domain's Agent and Tool resources from its kustomize directory;
- :mod:`.topology`: the graph of topics, Flink streams, agents and tools, as Mermaid;
- :mod:`.svg`: the same graph drawn as a standalone SVG.
"""
