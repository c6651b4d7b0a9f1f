"""PCAP analysis, importable without the server.

- ``run``: the bulk ingest pass (one ``tshark -T fields`` process, rows in batches).
- ``layout``: the offset index (where each frame's record sits; one-frame cut-outs).
- ``flows``: conversations and endpoints counted like Wireshark's taps.
- ``stats``: totals like ``capinfos``, I/O over time, packet sizes.
- ``taps``: tshark's own tap reports (protocol hierarchy; conversation reports for checks).
- ``sharkd``: a sharkd process (Wireshark's daemon) over its JSON-RPC; ``frame_tree``: its
  answer for one frame as ``pcap:packet``'s layer tree.
- ``follow``: Follow Stream (tshark).
"""
