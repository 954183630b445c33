"""Serves a directory on 127.0.0.1 at a free port; writes the port to a file.

usage: serve.py DIR PORTFILE
"""
import functools
import os
import http.server
import sys


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    directory, portfile = sys.argv[1], sys.argv[2]
    handler = functools.partial(Quiet, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


main()
