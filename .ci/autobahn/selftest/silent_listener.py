"""A TCP listener on 127.0.0.1:PORT that accepts and never answers (selftest only).

    python silent_listener.py PORT SECONDS
"""
import socket
import sys
import time

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier runs leave TIME_WAIT sockets
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(float(sys.argv[2]))
