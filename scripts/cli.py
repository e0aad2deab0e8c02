"""Command lines of the Python commands behind ./dev (tls-certs,
epf-pair): argparse, but a bad option is one line and where the help is,
as every pciefw tool answers it."""

import argparse
import sys


class Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: {message}\nTry '{self.prog} --help'.\n")
        sys.exit(2)
