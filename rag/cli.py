"""The ``rag`` command: index, search, ask, eval, serve.

JSON goes to stdout, progress and logs to stderr. This is the only module that
turns errors into exit codes: a user mistake (``RagError``) prints one readable
line and exits 1; ``--strict`` indexing problems exit 3. Heavy libraries are
imported inside the subcommands so ``rag --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag import __version__
from rag.config import Settings
from rag.errors import RagError

EPILOG = """\
examples:
  rag index                                  # index ./corpus into ./index (incremental)
  rag index --corpus news/ --corpus more.jsonl --rebuild
  rag search "K-AI 사업에서 탈락한 팀은?" --json
  rag search --batch queries.jsonl -k 10
  rag ask "Which teams were eliminated?" --json
  rag eval ../shared/eval/seed/questions.jsonl --json
  rag serve --port 7860

settings: every RAG_* environment variable is listed in README.md (e.g. RAG_INDEX_DIR,
RAG_EMBED_MODEL, RAG_LLM_BASE_URL). Flags override the environment.
"""


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "index", None):
        overrides["index_dir"] = args.index
    if getattr(args, "corpus", None):
        overrides["corpus"] = tuple(args.corpus)
    if getattr(args, "now", None):
        overrides["now"] = args.now
    return Settings.from_env(**overrides)


def _read_jsonl_questions(path: str) -> list[dict[str, Any]]:
    from rag.search.evaluate import load_queries

    return [{"id": q.id, "question": q.question} for q in load_queries(path)]


# ------------------------------------------------------------------ index
def cmd_index(args: argparse.Namespace) -> int:
    from rag.ingest.corpus import load_corpus
    from rag.store.index import build_index

    settings = _settings(args)
    if args.strict:
        problems = load_corpus(settings.corpus, settings.max_file_bytes, settings.max_line_bytes).problems
        if problems:
            for p in problems:
                _log(f"rag: {p.path}{':' + str(p.line) if p.line else ''}: {p.message}")
            _log(f"rag: --strict: {len(problems)} problem(s) in the corpus; nothing was indexed")
            return 3
    embedder = None
    if args.engine == "ray":  # the model work runs in a Ray actor pool (rag.store.rayindex)
        from rag.model.embed import load_embedder
        from rag.store.rayindex import RayEmbedder

        embedder = RayEmbedder(settings, load_embedder(settings), args.ray_workers, args.ray_address)
    report = build_index(settings, settings.corpus, settings.index_dir, rebuild=args.rebuild, progress=not args.quiet,
                         embedder=embedder)
    for p in report.problems:
        _log(f"rag: skipped {p.path}{':' + str(p.line) if p.line else ''}: {p.message}")
    for doc_id in report.kept:
        _log(f"rag: kept the previously indexed version of {doc_id} (its file cannot be read now)")
    for d in report.duplicates:
        _log(f"rag: not indexed {d['doc_id']}: {d['kind']} of {d['kept']} / 중복 기사")
    if report.up_to_date:
        _log(f"rag: index {report.index_dir} is up to date ({report.documents} documents, {report.chunks} passages); "
             "nothing to embed / 색인이 최신입니다")
    else:
        _log(f"rag: indexed {report.documents} documents, {report.chunks} passages into {report.index_dir} "
             f"({report.embedded} embedded, {report.reused} reused, {report.seconds:.1f}s) / 색인 완료")
    _prepare_query_embedder(settings, quiet=args.quiet)
    _print_json(report.to_json())
    return 0


def _prepare_query_embedder(settings: Any, quiet: bool) -> None:
    """Export the model to ONNX once, so search and serve start without torch (rag.model.onnxembed)."""
    from rag.model.encoder import prepare_query_embedder

    meta = prepare_query_embedder(settings, lambda m: None if quiet else _log(f"rag: {m}"))
    if meta is None:
        return
    if meta.get("ok"):
        _log(f"rag: questions will be embedded with the ONNX export (least cosine with sentence-transformers "
             f"{meta['min_cosine']} over {meta['probe_texts']} texts) / 질문 임베딩에 ONNX 모델을 씁니다")
    else:
        _log(f"rag: the ONNX export is not used ({meta.get('reason', '')}); questions are embedded with "
             "sentence-transformers / 질문 임베딩에 sentence-transformers를 씁니다")
        if meta.get("folder"):
            _log(f"rag: delete {meta['folder']} to try the export again")


# ----------------------------------------------------------------- search
def _filters(args: argparse.Namespace) -> Any:
    from rag.ingest.dates import check_range
    from rag.search.retrieve import Filters

    try:
        check_range(args.date_from, args.date_to)
    except ValueError as e:
        raise RagError(str(e)) from None
    return Filters(outlet=args.outlet or "", date_from=args.date_from or "", date_to=args.date_to or "")


def cmd_search(args: argparse.Namespace) -> int:
    from rag.answer.timeline import label
    from rag.search.retrieve import Retriever
    from rag.search.timescope import search_scoped
    from rag.text import detect_lang

    if not args.batch and not args.question:
        raise RagError("give a QUESTION or --batch QUERIES.jsonl")
    settings = _settings(args)
    filters = _filters(args)
    retriever = Retriever.open(settings, settings.index_dir)
    queries = _read_jsonl_questions(args.batch) if args.batch else [{"id": None, "question": args.question}]
    results = search_scoped(retriever, [q["question"] for q in queries], k=args.k, filters=filters,
                            now=settings.now, question_time=not args.no_question_time, mode=args.mode)
    for q, (hits, ts) in zip(queries, results, strict=True):
        if args.json or args.batch:
            _print_json({"id": q["id"], "question": q["question"], "time": ts.to_json() if ts else None,
                         "hits": [h.to_json() for h in hits]})
            continue
        if ts is not None:
            print(f"({label(ts, detect_lang(q['question']) or 'en')})")
        if not hits:
            print("no matching passages / 일치하는 문단이 없습니다")
        for h in hits:
            snippet = " ".join(h.chunk.text.split())
            print(f"{h.rank}. [{h.score:.3f}] {h.title or h.chunk.doc_id} ({h.chunk.chunk_id})")
            print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    return 0


# -------------------------------------------------------------------- ask
def _history(path: str | None) -> list[Any]:
    from rag.records import Turn

    if not path:
        return []
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        turns = data["history"] if isinstance(data, dict) else data
        return [Turn(str(t["role"]), str(t["content"])) for t in turns]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RagError(
            f"--history {p}: cannot read it ({e}); expected a JSON list of {{\"role\",\"content\"}} turns"
        ) from None


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer.compose import answer
    from rag.search.retrieve import Retriever

    if not args.batch and not args.question:
        raise RagError("give a QUESTION or --batch QUERIES.jsonl")
    settings = _settings(args)
    filters = _filters(args)
    retriever = Retriever.open(settings, settings.index_dir)
    history = _history(args.history)
    queries = _read_jsonl_questions(args.batch) if args.batch else [{"id": None, "question": args.question}]
    for q in queries:
        a = answer(retriever, q["question"], history=history, settings=settings, filters=filters,
                   question_time=not args.no_question_time)
        if args.json or args.batch:
            out = a.to_json()
            out["id"] = q["id"]
            _print_json(out)
            continue
        if a.time:
            print(f"({a.time['label']})")
        print(a.answer)
        for c in a.citations:
            print(f"  [{c.n}] {c.title or c.doc_id} ({c.chunk_id}, {c.start}-{c.end}): {c.quote}")
        if a.notice:
            _log(f"rag: {a.notice}")
        if a.abstained and a.extra.get("reason"):
            _log(f"rag: abstained / 답변 보류: {a.extra['reason']}")
    return 0


# ------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from rag.search.evaluate import evaluate_retrieval, load_queries
    from rag.search.retrieve import Retriever

    settings = _settings(args)
    if args.corpus:
        from rag.store.index import build_index

        build_index(settings, settings.corpus, settings.index_dir, progress=not args.quiet)
    queries = load_queries(args.queries)
    retriever = Retriever.open(settings, settings.index_dir)
    result: dict[str, Any] = {"queries": str(args.queries), "index": settings.index_dir}
    result["retrieval"] = evaluate_retrieval(retriever, queries, mode=args.mode, now=settings.now,
                                             question_time=not args.no_question_time)
    if args.answers:
        from rag.answer.answer_eval import evaluate_answers

        result["answers"] = evaluate_answers(retriever, [q.raw or {} for q in queries], settings,
                                             question_time=not args.no_question_time)
    if args.json:
        _print_json(result)
    else:
        r = result["retrieval"]
        for name, m in [("all", r["all"]), *r["by_lang"].items()]:
            if m.get("n"):
                print(f"{name:>4}  n={m['n']:<5} R@1={m['recall@1']:.3f}  R@5={m['recall@5']:.3f}  "
                      f"R@10={m['recall@10']:.3f}  MRR@10={m['mrr@10']:.3f}")
        if "answers" in result:
            print(json.dumps(result["answers"], ensure_ascii=False, indent=1))
    return 0


# ----------------------------------------------------------------- ingest
def cmd_ingest(args: argparse.Namespace) -> int:
    import time

    from rag.ingest.feeds import Fetcher
    from rag.store.feedindex import Ingestor, default_folder, parse_every, read_feed_list

    feeds = list(args.feed or [])
    for path in args.feeds or []:
        feeds += read_feed_list(path)
    if not feeds:
        raise RagError("give --feed URL (repeatable) or --feeds FILE with one feed URL a line")
    try:
        every = parse_every(args.every) if args.watch else 0.0
    except ValueError as e:
        raise RagError(f"--every: {e}") from None
    settings = _settings(args)
    fetcher = Fetcher(timeout=args.timeout, retries=args.retries, backoff=args.backoff, min_interval=args.rate)
    ingestor = Ingestor(settings, Path(args.into) if args.into else default_folder(settings), fetcher,
                        log=(lambda m: None) if args.quiet else _log)
    rounds = 0
    while True:
        report = ingestor.run(feeds, progress=not args.quiet)
        rounds += 1
        _log(f"rag: round {rounds}: {len(report.new)} new, {len(report.updated)} updated, {report.unchanged} "
             f"unchanged, {len(report.duplicates)} duplicates, {len(report.problems)} problems "
             f"({report.seconds:.1f}s) / 새 기사 {len(report.new)}건")
        _print_json(report.to_json())
        if not args.watch or (args.rounds and rounds >= args.rounds):
            return 0
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            return 0


# ------------------------------------------------------------------ serve
def cmd_serve(args: argparse.Namespace) -> int:
    from rag.serve.server import serve

    overrides: dict[str, Any] = {"host": args.host, "port": args.port, "root_path": args.root_path}
    if args.auth:
        overrides["auth"] = args.auth
    if args.index:
        overrides["index_dir"] = args.index
    settings = Settings.from_env(**overrides)
    serve(settings, insecure=args.insecure, open_browser=args.open)
    return 0


# ----------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rag",
        description="Grounded Korean/English Q&A over news articles: every answer cites the exact source sentence. "
        "/ 뉴스 기사 근거 기반 질의응답",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"rag {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def index_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--index", metavar="DIR", help="index folder (default: RAG_INDEX_DIR or ./index)")

    def filter_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--outlet", help="only articles from this outlet (e.g. 바이라인네트워크)")
        sp.add_argument("--from", dest="date_from", metavar="DATE", type=_iso_date,
                        help="only articles published on/after DATE (YYYY-MM-DD)")
        sp.add_argument("--to", dest="date_to", metavar="DATE", type=_iso_date,
                        help="only articles published on/before DATE (YYYY-MM-DD)")

    def time_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--now", metavar="DATE", type=_iso_date,
                        help='reference day for time words such as "지난주" / "last week" (default: RAG_NOW or today)')
        sp.add_argument("--no-question-time", action="store_true",
                        help='ignore time words in the question (search all dates) / 질문의 기간 조건 무시')

    sp = sub.add_parser("index", help="build or update the index from article folders / JSONL files")
    sp.add_argument("--corpus", action="append", metavar="PATH",
                    help="folder of .md/.txt/.html/.jsonl articles or a .jsonl file (repeatable; default ./corpus)")
    index_opt(sp)
    sp.add_argument("--rebuild", action="store_true", help="ignore the previous index and embed everything")
    sp.add_argument("--strict", action="store_true", help="exit non-zero (3) if any file or line cannot be read")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sp.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="where the model runs: this process (default) or a Ray actor pool (pip install -e '.[ray]')")
    sp.add_argument("--ray-address", default="", metavar="ADDR",
                    help="Ray cluster to use (ray://head:10001 or auto); default: start a local Ray")
    sp.add_argument("--ray-workers", type=int, default=0, metavar="N",
                    help="actors, one model each (default: one per GPU, else one per CPU of the cluster)")
    sp.set_defaults(func=cmd_index)

    sp = sub.add_parser("search", help="retrieve passages for a question (hybrid dense + BM25)")
    sp.add_argument("question", nargs="?", help="the question, Korean or English")
    sp.add_argument("-k", type=_int_in(1, 1000), default=5, help="number of passages (default 5)")
    index_opt(sp)
    sp.add_argument("--json", action="store_true", help="print one JSON line per query")
    sp.add_argument("--batch", metavar="QUERIES.jsonl", help='one {"id","question"} per line; prints JSON lines')
    sp.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid", help=MODE_HELP)
    filter_opts(sp)
    time_opts(sp)
    sp.set_defaults(func=cmd_search)

    sp = sub.add_parser("ask", help="answer a question with citations to the source sentences")
    sp.add_argument("question", nargs="?", help="the question, Korean or English")
    index_opt(sp)
    sp.add_argument("--json", action="store_true", help="print the answer as JSON")
    sp.add_argument("--batch", metavar="QUERIES.jsonl", help='one {"id","question"} per line; prints JSON lines')
    sp.add_argument("--history", metavar="FILE", help='previous turns: JSON list of {"role","content"}')
    filter_opts(sp)
    time_opts(sp)
    sp.set_defaults(func=cmd_ask)

    sp = sub.add_parser("eval", help="Recall@1/5/10 and MRR@10 (and answer metrics) on a JSONL query set")
    sp.add_argument("queries", metavar="QUERIES.jsonl")
    index_opt(sp)
    sp.add_argument("--corpus", action="append", metavar="PATH", help="index this corpus into --index first")
    sp.add_argument("--json", action="store_true", help="print the metrics as JSON")
    sp.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid", help=MODE_HELP)
    sp.add_argument("--answers", action="store_true", help="also measure answers and abstention (slower)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    time_opts(sp)
    sp.set_defaults(func=cmd_eval)

    sp = sub.add_parser("ingest", help="fetch new articles from RSS/Atom feeds or news sitemaps and index them")
    sp.add_argument("--feed", action="append", metavar="URL", help="RSS 2.0, Atom or Google News sitemap (repeatable)")
    sp.add_argument("--feeds", action="append", metavar="FILE", help="text file with one feed URL a line")
    sp.add_argument("--into", metavar="DIR", help="where fetched articles are stored (default: <corpus>/feeds)")
    sp.add_argument("--corpus", action="append", metavar="PATH", help="the rest of the corpus (default ./corpus)")
    index_opt(sp)
    sp.add_argument("--watch", action="store_true", help="keep fetching every --every")
    sp.add_argument("--every", default="15m", help="pause between rounds with --watch (e.g. 15m, 30s, 1h)")
    sp.add_argument("--rounds", type=_int_in(0, 1_000_000), default=0, help=argparse.SUPPRESS)  # tests
    sp.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    sp.add_argument("--retries", type=_int_in(0, 10), default=2, help="retries after timeouts and 5xx (default 2)")
    sp.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry, doubled each time")
    sp.add_argument("--rate", type=float, default=1.0, help="seconds between requests to one host (default 1)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    sp.set_defaults(func=cmd_ingest)

    sp = sub.add_parser("serve", help="start the chat page and JSON API")
    sp.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    sp.add_argument("--port", type=_int_in(1, 65535), default=None, help="port (default 7860)")
    sp.add_argument("--root-path", default=None, help="sub-path behind a reverse proxy, e.g. /chat")
    sp.add_argument("--auth", choices=("none", "api-key", "trusted-header"), default=None, help="who may use it")
    sp.add_argument("--insecure", action="store_true", help="allow a non-loopback host without auth")
    sp.add_argument("--open", action="store_true", help="open the page in a browser")
    index_opt(sp)
    sp.set_defaults(func=cmd_serve)
    return p


def _int_in(lo: int, hi: int) -> Any:
    """argparse type: an integer from ``lo`` to ``hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; use {lo} to {hi}")
        return value

    return parse


MODE_HELP = ("retriever: hybrid (default); dense = passage vectors alone, bm25 = single-term BM25 alone "
             "(the baselines hybrid is measured against)")


def _iso_date(text: str) -> str:
    """argparse type: a calendar date written YYYY-MM-DD (what article metadata is compared with)."""
    from rag.ingest.dates import filter_day

    try:
        return filter_day(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except RagError as e:
        _log(f"rag: error: {e}")
        return 1
    except KeyboardInterrupt:
        _log("rag: interrupted; the previous index (if any) is unchanged / 중단됨")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
