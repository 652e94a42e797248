"""Whether to answer at all: absolute cosines of the question against its retrieved passages.

:func:`decide` abstains when the best passage is closer to small talk than to
any article, or not specifically about the question (thresholds in
:class:`Calibration`, chosen on whole sets: the seed questions, Belebele ko/en
and the off-topic set; see ``docs/answers.md``). :mod:`rag.answer.evidence`
calls it before scoring any sentence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    """Abstention thresholds on absolute cosines; see ``docs/answers.md`` for the measurements.

    ``cos`` is the question's cosine with its best retrieved passage, ``gap`` how far
    that passage stands out from the average passage of the index, ``contrast``
    how much closer the question is to that passage than to the nearest text of
    the background set (``rag/data/background.txt``: weather, sports, recipes,
    arithmetic, small talk and other requests no article answers).
    """

    same_contrast: float = 0.0  # below: the question is more like small talk than like the articles
    same_cos: float = 0.85  # same language: a passage this close is about the question ...
    same_gap: float = 0.035  # ... or one that stands out this much from the rest of the index
    # across languages (English question, Korean article) e5-small cosines are lower and noisier:
    # answerable seed/dialogue questions reach contrast >= -0.018, off-topic ones stay <= -0.016
    cross_contrast: float = -0.02
    cross_cos: float = 0.74  # a floor only
    # ... unless one sentence is closer to the question than the background (off-topic en <= -0.017,
    # "the first-stage evaluation that cuts five teams to four" +0.016)
    cross_sent_contrast: float = 0.0


CALIBRATION = Calibration()


def decide(
    cos: list[float], mean: float, background: float, same: bool, floor: float = 0.0, sent_best: float = -1.0
) -> tuple[bool, str, dict[str, float | bool]]:
    """Abstain or answer, why, and the measured scores. ``cos``: the question's cosine with each
    retrieved passage; ``mean``: its average cosine with the index; ``background``: with the nearest
    background text; ``same``: the best passage is in the question's language; ``floor``
    (``RAG_MIN_ANSWER_SCORE``, 0 = off): a stricter cosine floor on top; ``sent_best``: the best
    cosine with one sentence of the retrieved passages."""
    cal = CALIBRATION
    best_cos = max(cos)
    gap = best_cos - mean
    contrast = best_cos - background
    sent_contrast = sent_best - background
    scores: dict[str, float | bool] = {
        "cos": round(best_cos, 4),
        "gap": round(gap, 4),
        "contrast": round(contrast, 4),
        "sent_contrast": round(sent_contrast, 4),
        "same_language": same,
    }
    # across languages one sentence can match a question that its whole passage does not
    # ("the first-stage evaluation that cuts five teams to four" is one clause of a long passage)
    if not same and sent_contrast >= cal.cross_sent_contrast:
        contrast = max(contrast, cal.cross_contrast)
    if contrast < (cal.same_contrast if same else cal.cross_contrast):
        return True, "closer to small talk than to any article", scores
    if same and best_cos < cal.same_cos and gap < cal.same_gap:
        return True, "no passage is specifically about the question", scores
    if not same and best_cos < cal.cross_cos:
        return True, "no passage is about the question", scores
    if best_cos < floor:
        return True, f"best passage's cosine {best_cos:.3f} is below RAG_MIN_ANSWER_SCORE={floor}", scores
    return False, "evidence", scores
