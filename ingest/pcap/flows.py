"""Conversations and endpoints, accumulated packet by packet the way Wireshark's
conversation taps count them:

- every Ethernet / IPv4 / IPv6 layer of a frame counts (a GRE tunnel adds the outer and
  the inner IP pair), except headers quoted inside an ICMP/ICMPv6 error message;
- TCP and UDP conversations are one per stream (``tcp.stream`` / ``udp.stream``), between
  the addresses of the IP layer that carries them;
- address A is the source of the conversation's first frame; bytes are frame lengths;
  start is relative to the capture's first frame (times kept in integer nanoseconds).
Endpoints are the conversations summed per address (and port): exactly Wireshark's
endpoint tap, which sees the same (source, destination) pairs.
"""
from __future__ import annotations

KINDS = ("eth", "ip", "ipv6", "tcp", "udp")
_ERRORS = ("icmp", "icmpv6")


class Conv:
    __slots__ = ("a", "b", "pa", "pb", "f_ab", "b_ab", "f_ba", "b_ba", "first", "last",
                 "stream")

    def __init__(self, a, b, pa, pb, ts, stream=None):
        self.a, self.b, self.pa, self.pb = a, b, pa, pb
        self.f_ab = self.b_ab = self.f_ba = self.b_ba = 0
        self.first = self.last = ts
        self.stream = stream

    def add(self, src, sport, length, ts) -> None:
        if src == self.a and (sport == self.pa or self.pa == self.pb):
            self.f_ab += 1
            self.b_ab += length
        else:
            self.f_ba += 1
            self.b_ba += length
        if ts < self.first:
            self.first = ts
        if ts > self.last:
            self.last = ts


class Flows:
    def __init__(self):
        self.tables: dict[str, dict] = {kind: {} for kind in KINDS}
        self.t0: float | None = None

    def _pair(self, kind: str, src: str, dst: str, length: int, ts: float) -> None:
        table = self.tables[kind]
        key = (src, dst) if src <= dst else (dst, src)
        conv = table.get(key)
        if conv is None:
            conv = table[key] = Conv(src, dst, None, None, ts)
        conv.add(src, None, length, ts)

    def _stream(self, kind: str, stream: str, src: str, sport: int, dst: str, dport: int,
                length: int, ts: float) -> None:
        table = self.tables[kind]
        conv = table.get(stream)
        if conv is None:
            conv = table[stream] = Conv(src, dst, sport, dport, ts, int(stream))
        conv.add(src, sport, length, ts)

    def add(self, ts: int, length: int, protocols: str, eth_src: str, eth_dst: str,
            ip_src: str, ip_dst: str, ip6_src: str, ip6_dst: str, tcp_sport: str,
            tcp_dport: str, tcp_stream: str, udp_sport: str, udp_dport: str,
            udp_stream: str) -> None:
        if self.t0 is None:
            self.t0 = ts
        if "icmp" not in protocols and "frag" not in protocols and "," not in ip_src + \
                ip6_src + eth_src + tcp_stream + udp_stream:
            # One layer of each: the common case, without walking the protocol chain.
            if eth_src:
                self._pair("eth", eth_src, eth_dst, length, ts)
            if ip_src:
                self._pair("ip", ip_src, ip_dst, length, ts)
                net_src, net_dst = ip_src, ip_dst
            elif ip6_src:
                self._pair("ipv6", ip6_src, ip6_dst, length, ts)
                net_src, net_dst = ip6_src, ip6_dst
            else:
                net_src = net_dst = ""
            if ip_src and ip6_src:  # IPv6 over IPv4 (or the reverse): the inner one carries
                self._pair("ipv6", ip6_src, ip6_dst, length, ts)
                if protocols.rfind(":ipv6") > protocols.rfind(":ip:"):
                    net_src, net_dst = ip6_src, ip6_dst
            if tcp_stream and net_src:
                self._stream("tcp", tcp_stream, net_src, int(tcp_sport), net_dst,
                             int(tcp_dport), length, ts)
            elif udp_stream and net_src:
                self._stream("udp", udp_stream, net_src, int(udp_sport), net_dst,
                             int(udp_dport), length, ts)
            return
        self._walk(ts, length, protocols, eth_src.split(","), eth_dst.split(","),
                   ip_src.split(","), ip_dst.split(","), ip6_src.split(","),
                   ip6_dst.split(","), tcp_sport.split(","), tcp_dport.split(","),
                   tcp_stream.split(","), udp_sport.split(","), udp_dport.split(","),
                   udp_stream.split(","))

    def _walk(self, ts, length, protocols, eth_src, eth_dst, ip_src, ip_dst, ip6_src,
              ip6_dst, tcp_sport, tcp_dport, tcp_stream, udp_sport, udp_dport, udp_stream):
        seen = {"eth": 0, "ip": 0, "ipv6": 0, "tcp": 0, "udp": 0}
        net = ("", "")
        chain = protocols.split(":")
        for at, layer in enumerate(chain):
            if layer in _ERRORS:
                break  # what follows is the quoted packet of an ICMP error (or ping data)
            if layer not in seen:
                continue
            i = seen[layer]
            seen[layer] = i + 1
            if layer == "eth" and i < len(eth_src) and eth_src[i]:
                self._pair("eth", eth_src[i], _at(eth_dst, i), length, ts)
            elif layer == "ip" and i < len(ip_src) and ip_src[i]:
                net = (ip_src[i], _at(ip_dst, i))
                self._pair("ip", net[0], net[1], length, ts)
            elif layer == "ipv6" and i < len(ip6_src) and ip6_src[i]:
                net = (ip6_src[i], _at(ip6_dst, i))
                # An IPv6 fragment still waiting for the rest is not tapped: only the frame
                # that completes the datagram counts.
                if chain[at + 1:at + 3] not in (["ipv6.fraghdr", "data"], ["ipv6.fraghdr"]):
                    self._pair("ipv6", net[0], net[1], length, ts)
            elif layer == "tcp" and i < len(tcp_stream) and tcp_stream[i] and net[0]:
                self._stream("tcp", tcp_stream[i], net[0], int(tcp_sport[i]), net[1],
                             int(tcp_dport[i]), length, ts)
            elif layer == "udp" and i < len(udp_stream) and udp_stream[i] and net[0]:
                self._stream("udp", udp_stream[i], net[0], int(udp_sport[i]), net[1],
                             int(udp_dport[i]), length, ts)

    # -- results ----------------------------------------------------------------------

    def conversations(self, kind: str) -> list[dict]:
        t0 = self.t0 or 0
        out = []
        for conv in self.tables[kind].values():
            item = {"a": conv.a, "b": conv.b, "framesAB": conv.f_ab, "bytesAB": conv.b_ab,
                    "framesBA": conv.f_ba, "bytesBA": conv.b_ba,
                    "frames": conv.f_ab + conv.f_ba, "bytes": conv.b_ab + conv.b_ba,
                    "start": (conv.first - t0) / 1e9,
                    "duration": (conv.last - conv.first) / 1e9}
            if kind in ("tcp", "udp"):
                item.update(portA=conv.pa, portB=conv.pb, stream=conv.stream)
            out.append(item)
        out.sort(key=lambda c: (c["start"], c.get("stream") or 0, c["a"], c["b"]))
        for i, item in enumerate(out):
            item["id"] = i
        return out


def endpoints(kind: str, conversations: list[dict]) -> list[dict]:
    """Per address (and port for TCP/UDP): packets and bytes sent and received."""
    table: dict = {}
    ports = kind in ("tcp", "udp")
    for c in conversations:
        for addr, port, tx_f, tx_b, rx_f, rx_b in (
                (c["a"], c.get("portA"), c["framesAB"], c["bytesAB"], c["framesBA"], c["bytesBA"]),
                (c["b"], c.get("portB"), c["framesBA"], c["bytesBA"], c["framesAB"], c["bytesAB"])):
            key = (addr, port)
            e = table.get(key)
            if e is None:
                e = table[key] = {"address": addr, "txFrames": 0, "txBytes": 0,
                                  "rxFrames": 0, "rxBytes": 0}
                if ports:
                    e["port"] = port
            e["txFrames"] += tx_f
            e["txBytes"] += tx_b
            e["rxFrames"] += rx_f
            e["rxBytes"] += rx_b
    out = sorted(table.values(), key=lambda e: (e["address"], e.get("port") or 0))
    for i, e in enumerate(out):
        e["frames"] = e["txFrames"] + e["rxFrames"]
        e["bytes"] = e["txBytes"] + e["rxBytes"]
        e["id"] = i
    return out


def _at(values: list[str], i: int) -> str:
    return values[i] if i < len(values) else ""
