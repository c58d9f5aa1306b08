"""``fvc evaluate``: being written."""

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+")


def run_command(args: argparse.Namespace) -> int:
    return 0
