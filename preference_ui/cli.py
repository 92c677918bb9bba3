"""`workbench annotate serve | import | export | users | simulate`: the annotation store from the shell.

The store is ``annotation.db`` from the config, by default ``runs/<name>/annotations.sqlite``;
``--db PATH`` overrides both.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from workbench.cli import add_config_args


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `workbench annotate ...`."""
    annotate = sub.add_parser("annotate", help="the preference annotation app and its store")
    actions = annotate.add_subparsers(dest="action", required=True, metavar="ACTION")

    serve = _with_store_args(actions.add_parser("serve", help="serve the annotation app (Gradio)"))
    serve.add_argument("--host", help="listen address (default: annotation.host)")
    serve.add_argument("--port", type=int, help="port (default: annotation.port)")
    serve.set_defaults(func=_serve)

    imp = _with_store_args(actions.add_parser("import", help="add items from a JSONL file (see preference_ui/items.py)"))
    imp.add_argument("file", help="item JSONL: {id, prompt, responses: [a, b], models: [ma, mb], round, meta}")
    imp.add_argument("--overlap", type=int, help="annotations per item (default: annotation.overlap)")
    imp.set_defaults(func=_import)

    exp = _with_store_args(actions.add_parser("export", help="write preferences.jsonl, dataset/ and stats.json"))
    exp.add_argument("--round", type=int, help="only this round (default: every item)")
    exp.add_argument("--out", help="output folder (default: runs/<name>/rounds/round_NN/preferences with "
                                   "--round, else runs/<name>/annotations_export)")
    exp.set_defaults(func=_export)

    sim = _with_store_args(actions.add_parser("simulate", help="let simulated annotators answer open items"))
    sim.add_argument("--round", type=int, help="only this round's items")
    sim.add_argument("--annotators", type=int, help="simulated accounts (default: annotation.overlap)")
    sim.set_defaults(func=_simulate)

    users = actions.add_parser("users", help="manage annotator accounts")
    user_actions = users.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    add = _with_store_args(user_actions.add_parser("add", help="create an account (or reset it with --update)"))
    add.add_argument("name")
    source = add.add_mutually_exclusive_group()  # never on the command line, where `ps` shows it
    source.add_argument("--password-file", metavar="PATH", help="read the password from the file's first line "
                        "(default: asked for at a prompt)")
    source.add_argument("--password-env", metavar="VAR", help="read the password from environment variable VAR")
    add.add_argument("--password", type=_refuse_argv_password, help=argparse.SUPPRESS)
    add.add_argument("--admin", action="store_true", help="may open the admin view")
    add.add_argument("--update", action="store_true", help="reset the password of an existing account")
    add.set_defaults(func=_users_add)
    listing = _with_store_args(user_actions.add_parser("list", help="list accounts and their annotation counts"))
    listing.set_defaults(func=_users_list)


def _with_store_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_config_args(parser)
    parser.add_argument("--db", help="SQLite store (default: annotation.db or runs/<name>/annotations.sqlite)")
    return parser


def _open(args):
    from preference_ui.store import Store

    cfg = args.cfg
    return cfg, Store.from_config(cfg, db=args.db)


def _serve(args) -> int:
    from preference_ui.app import launch, load_guidelines

    cfg, store = _open(args)
    guidelines = load_guidelines(cfg.annotation.guidelines)
    if not store.users():
        print(f"no accounts in {store.path} yet; add one with: workbench annotate users add NAME --admin",
              file=sys.stderr)
    host, port = args.host or cfg.annotation.host, args.port if args.port is not None else cfg.annotation.port
    print(f"serving {store.path} on http://{host}:{port}", flush=True)
    launch(store, host=host, port=port, concurrency=cfg.annotation.concurrency, guidelines=guidelines,
           default_overlap=cfg.annotation.overlap)
    return 0


def _import(args) -> int:
    from preference_ui.items import read_items

    cfg, store = _open(args)
    counts = store.import_items(read_items(args.file), overlap=args.overlap or cfg.annotation.overlap)
    print(f"{args.file}: {counts['added']} items added, {counts['existing']} already there ({store.path})")
    return 0


def _export(args) -> int:
    from preference_ui.export import write_export
    from workbench.rundir import RunDir

    cfg, store = _open(args)
    if args.out:
        out = Path(args.out)
    elif args.round is not None:
        out = RunDir(cfg.run_path).round_stage(args.round, "preferences")
    else:
        out = cfg.run_path / "annotations_export"
    stats = write_export(store, out, round=args.round)
    print(json.dumps({"out": str(out), **{k: stats[k] for k in ("annotations", "edited", "levels", "agreement")}},
                     indent=2))
    return 0


def _simulate(args) -> int:
    from preference_ui.simulated import annotate_round

    cfg, store = _open(args)
    a = cfg.annotation
    counts = annotate_round(store, args.round, annotators=args.annotators or a.overlap, name=a.simulated_user,
                            edit_prob=a.edit_prob, noise=a.noise, seed=cfg.seed)
    print(f"simulated annotators: {counts['submitted']} submitted, {counts['skipped']} skipped")
    return 0


def _refuse_argv_password(_value: str) -> str:
    raise argparse.ArgumentTypeError("a password on the command line shows in `ps`; use --password-file, "
                                     "--password-env or the prompt")


def _password(args) -> str:
    """The new password from --password-file, --password-env or a prompt (asked twice)."""
    if args.password_file:
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        if not lines:
            raise ValueError(f"{args.password_file}: empty; write the password on its first line")
        return lines[0]
    if args.password_env:
        if args.password_env not in os.environ:
            raise ValueError(f"--password-env: environment variable {args.password_env} is not set")
        return os.environ[args.password_env]
    password = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != password:
        raise ValueError("the two passwords differ; nothing was changed")
    return password


def _users_add(args) -> int:
    password = _password(args)
    _, store = _open(args)
    store.add_user(args.name, password, admin=args.admin, update=args.update)
    print(f"{'updated' if args.update else 'added'} {'admin ' if args.admin else ''}account {args.name} in {store.path}")
    return 0


def _users_list(args) -> int:
    _, store = _open(args)
    for user in store.users():
        print(f"{user['name']:<24} {'admin' if user['admin'] else '     '} {user['annotations']:>6} annotations")
    return 0
