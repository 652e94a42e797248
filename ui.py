"""``python ui.py``: the chat page and JSON API, the same server as ``rag serve``.

Settings come from ``RAG_*`` variables, then these flags. Build the index first
(``rag index``); without one the page still opens and says what to do.
"""

from __future__ import annotations

import argparse
import sys

from rag.config import Settings
from rag.errors import RagError
from rag.serve.server import serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Start the news Q&A chat page / 뉴스 Q&A 채팅 페이지 실행")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--root-path", help="public sub-path behind a reverse proxy, e.g. /chat")
    p.add_argument("--index", help="index folder (default ./index)")
    p.add_argument("--auth", choices=("none", "api-key", "trusted-header"), help="who may use it")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback host without auth")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    args = p.parse_args(argv)
    settings = Settings.from_env(host=args.host, port=args.port, root_path=args.root_path,
                                 index_dir=args.index, auth=args.auth)
    try:
        serve(settings, insecure=args.insecure, open_browser=args.open)
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
