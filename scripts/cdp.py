#!/usr/bin/env python3
"""A small Chrome DevTools Protocol client (standard library only) for the browser tests.

  cdp.py PORT eval JS                      evaluates JS in the first page, prints the value as JSON
  cdp.py PORT navigate URL                 loads URL in the first page and waits for it to load
  cdp.py PORT screenshot WIDTH HEIGHT OUT  a PNG of the page at that viewport size (a phone: 390 wide)

Each call opens its own WebSocket to the page, sends one command and closes: the test drives the browser step by
step from Swift.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.request


def page_socket(port):
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
    page = next(t for t in targets if t.get("type") == "page")
    url = page["webSocketDebuggerUrl"]
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, p = hostport.split(":")
    s = socket.create_connection((host, int(p)), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise RuntimeError("handshake closed")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.decode(errors="replace"))
    return s


def send(s, obj):
    data = json.dumps(obj).encode()
    header = bytearray([0x81])
    n = len(data)
    if n < 126:
        header.append(0x80 | n)
    elif n < 65536:
        header.append(0x80 | 126)
        header += struct.pack(">H", n)
    else:
        header.append(0x80 | 127)
        header += struct.pack(">Q", n)
    mask = os.urandom(4)
    header += mask
    s.sendall(bytes(header) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise RuntimeError("socket closed")
        out += chunk
    return out


def receive(s):
    message = b""
    while True:
        b1, b2 = recv_exact(s, 2)
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack(">H", recv_exact(s, 2))[0]
        elif n == 127:
            n = struct.unpack(">Q", recv_exact(s, 8))[0]
        payload = recv_exact(s, n)
        opcode = b1 & 0x0F
        if opcode == 8:
            raise RuntimeError("closed by the browser")
        if opcode in (0, 1, 2):
            message += payload
            if b1 & 0x80:
                return json.loads(message)


def call(s, method, params, ident=1):
    send(s, {"id": ident, "method": method, "params": params})
    while True:
        m = receive(s)
        if m.get("id") == ident:
            if "error" in m:
                raise RuntimeError(json.dumps(m["error"]))
            return m["result"]


def main():
    port, command = sys.argv[1], sys.argv[2]
    s = page_socket(port)
    try:
        if command == "eval":
            r = call(s, "Runtime.evaluate", {"expression": sys.argv[3], "returnByValue": True, "awaitPromise": True})
            if "exceptionDetails" in r:
                print(json.dumps({"exception": r["exceptionDetails"].get("text")}))
                sys.exit(1)
            print(json.dumps(r["result"].get("value")))
        elif command == "navigate":
            call(s, "Page.enable", {}, 1)
            call(s, "Page.navigate", {"url": sys.argv[3]}, 2)
            deadline = time.time() + 15
            while time.time() < deadline:
                state = call(s, "Runtime.evaluate", {"expression": "document.readyState", "returnByValue": True}, 3)
                if state["result"].get("value") == "complete":
                    break
                time.sleep(0.05)
            print(json.dumps(True))
        elif command == "screenshot":
            width, height, out = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
            call(s, "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}, 1)
            time.sleep(0.3)
            r = call(s, "Page.captureScreenshot", {"format": "png"}, 2)
            with open(out, "wb") as f:
                f.write(base64.b64decode(r["data"]))
            print(json.dumps(True))
        else:
            sys.exit(f"unknown command {command}")
    finally:
        s.close()


if __name__ == "__main__":
    main()
