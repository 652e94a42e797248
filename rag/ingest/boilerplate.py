"""Web-page boilerplate in an article's text: comment forms, footers, share lines, bylines.

:func:`strip_boilerplate` takes a normalised article text and returns the body
without them, plus the metadata found on the way (``author`` from a byline,
``outlet`` from a "글. OUTLET" credit). Pure text in, text out: it reads no
files and knows no formats (that is :mod:`rag.ingest.corpus`).
"""

from __future__ import annotations

import re

from rag.text import normalize

_SHORT = 160  # only lines up to this long are judged by pattern; real prose is left alone
_COMMENT_START = re.compile(
    r"^(?:답글\s*남기기|댓글\s*(?:남기기|달기|쓰기)|댓글\s*\d*\s*개?|\d+\s*개의\s*댓글|"
    r"leave\s+a\s+(?:reply|comment)|post\s+a\s+comment|add\s+a\s+comment|\d*\s*comments?|"
    r"join\s+the\s+(?:discussion|conversation)|이메일\s*주소는\s*공개되지\s*않습니다.*|"
    r"your\s+email\s+address\s+will\s+not\s+be\s+published.*)\s*[:：]?$",
    re.I,
)
_FOOTER = re.compile(
    r"^(?:(?:ⓒ|©|\(c\))\s*\S.*|copyright\s*(?:[©ⓒ:]|\(c\)|\d{4}).*|\[?저작권자\s*(?:[©ⓒ:(]|\(c\)).*|"
    r".*(?:무단\s*전재|재배포\s*금지|all\s+rights\s+reserved|recaptcha).*|"
    r"(?:공유하기|공유|구독하기|구독|share(?:\s+this)?(?:\s+(?:article|story|post))?|share\s+on\s+\w+|"
    r"subscribe(?:\s+now|\s+to\s+[^.]{0,60})?|newsletter|sign\s+up\s+for\s+[^.]{0,40}newsletter)\s*[!.:：]?|"
    r"(?:이름|이메일|웹사이트|name|e-?mail|website|comment|댓글)\s*\*?\s*[:：]?|"
    r"(?:다음\s*번\s*댓글\s*작성을\s*위해.*|save\s+my\s+name,\s+email.*|댓글\s*등록|post\s+comment|"
    r"submit\s+comment|reply)|<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?)$",
    re.I,
)
_EMAIL = r"(?:<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?)"
_KO_BYLINE = re.compile(
    r"^[-—/]?\s*[<(\[]?\s*([가-힣]{2,4}(?:\s*[·,]\s*[가-힣]{2,4})*)\s*"
    r"(?:기자|특파원|선임기자|전문기자|객원기자|인턴기자|에디터|칼럼니스트)\s*[>)\]]?\s*" + _EMAIL + r"?\s*$"
)
_EN_BYLINE = re.compile(
    r"^[-—–]?\s*(?:By|BY)\s+((?:[A-Z][\w.'’-]*)(?:\s+(?:[A-Z][\w.'’-]*|de|van|von|der|da|la|and))*)"
    r"(?:\s*[,|/]\s*[A-Z][\w.'’& -]{0,40})?\s*" + _EMAIL + r"?$"
)
_CREDIT = re.compile(r"^(?:글|기사|취재)\s*[.:·]\s*(\S.{0,40})$")


def _byline(line: str) -> str:
    m = _KO_BYLINE.match(line) or _EN_BYLINE.match(line)
    return re.sub(r"\s*[·]\s*", ", ", m.group(1)).strip() if m else ""


def strip_boilerplate(text: str) -> tuple[str, dict[str, str]]:
    """Remove web-page boilerplate from a normalised article text.

    Cuts a trailing comment-form block (from "답글 남기기"/"Leave a Reply"/the
    e-mail notice to the end, when it starts after the first 30% of the text),
    then trailing footer and byline lines, then short standalone footer lines
    anywhere (copyright, 무단전재, reCAPTCHA, share/subscribe). Returns the body
    and metadata found on the way: ``author`` from a byline ("NAME 기자 e-mail",
    "By NAME"), ``outlet`` from a "글. OUTLET" credit next to a byline. The
    credit line itself stays in the body: it is the only place in the text that
    names the outlet, so "who published this?" can be answered with a citation.
    """
    lines = text.split("\n")
    found: dict[str, str] = {}
    pos = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if pos >= 0.3 * len(text) and len(s) <= _SHORT and _COMMENT_START.match(s):
            lines = lines[:i]
            break
        pos += len(line) + 1
    credit, i = "", len(lines)
    while i > 0:  # trailing footer/byline lines; a "글. OUTLET" credit stays (it can be cited)
        i -= 1
        s = lines[i].strip()
        if len(s) > _SHORT:
            break
        name, credit_m = _byline(s), _CREDIT.match(s)
        if credit_m:
            credit = credit_m.group(1).strip()
            continue
        if name:
            found.setdefault("author", name)
        elif s and not (_FOOTER.match(s) or _COMMENT_START.match(s)):
            break
        lines[i] = ""
    if credit:  # "글. 홍길동" names a writer, "글. 바이라인네트워크" the outlet
        person = "author" not in found and re.fullmatch(r"[가-힣]{2,4}", credit)
        found.setdefault("author" if person else "outlet", credit)
    head = [i for i, line in enumerate(lines[:4]) if line.strip()][:2]
    for i in head:
        m = _EN_BYLINE.match(lines[i].strip())
        if m and "author" not in found:
            found["author"] = m.group(1).strip()
            lines[i] = ""
    kept = [ln for ln in lines if not (len(ln.strip()) <= _SHORT and _FOOTER.match(ln.strip()))]
    return normalize("\n".join(kept)), found
