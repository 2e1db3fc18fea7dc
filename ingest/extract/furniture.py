"""Text patterns of page furniture: lines that sit inside an article's container but are
not the article ("Advertisement", "Share this story", "Published 3 May 2023 | Updated ...",
a cookie notice, a paywall prompt), and the headings that open recirculation blocks.

These are judged on text, so they are kept to short blocks: a paragraph that merely
mentions cookies inside a long article is never touched. Patterns cover English and the
languages we have seen them in; they are tuned on the two benchmark sets (see BENCHMARKS.md)
and never on a site's markup.
"""

from __future__ import annotations

import re

# Blocks of up to this many words are tested against these patterns.
FURNITURE_MAX_WORDS = 40
_SHORT_WORDS = 8
_DATELINE_WORDS = 16

# Headings that open recirculation blocks, in the languages we have seen them in.
_RELATED_HEADING = re.compile(
    r"^\W*(related( articles| stories| posts| content| news| reading)?|"
    r"(you|we think you) (may|might|will) (also )?(like|enjoy)|more (from|stories|on|in) .{0,30}|"
    r"recommended( for you| reading| stories)?|read (more|next|also)|most (read|popular|viewed)|"
    r"(latest|popular|trending|top) (stories|news|posts|articles)|our latest stories|"
    r"see also|also read|don.t miss|keep reading|up next|"
    r"você (também )?pode gostar|leia (também|mais)|veja também|"
    r"te puede interesar|también te puede interesar|lee también|relacionad[oa]s|"
    r"à lire aussi|sur le même sujet|lire aussi|mehr zum thema|das könnte sie auch interessieren|"
    r"leggi anche|potrebbe interessarti)\W*$",
    re.IGNORECASE,
)
# Labels and buttons, matched whole.
_SHORT_BOILERPLATE = re.compile(
    r"^\W*(advertisement|advertising|advert|ad|sponsored|"
    r"share( this( article| story| post)?)?( on \w+)?|tweet|"
    r"email|print|read more|more|related( articles| stories| posts| content)?|see also|"
    r"recommended( for you)?|most (read|popular|viewed)|sign up|subscribe( now)?|"
    r"continue reading|click here.*|follow us.*|comments?|leave a (comment|reply)|"
    r"skip to (main )?content|loading\W*|image|photo|video|listen|copy link|"
    r"share (via|on) .*|tags?|(image|photo|slide) \d+ (of|/) \d+|(just|must) watch(ed)?|"
    r"join the (conversation|discussion)|tell us what you think|"
    r"to read the full (story|article)|this slideshow requires javascript)\W*$",
    re.IGNORECASE,
)
# Notices, found anywhere in a short block: consent banners, paywall and newsletter
# prompts.
_NOTICE = re.compile(
    r"\b((this|our) (web)?site uses cookies|we use cookies|"
    r"(already a|become a) subscriber|subscribe (now )?to (continue|keep) reading|"
    r"sign up for .{0,60}newsletter|subscribe to .{0,60}newsletters?|"
    r"(delivered|right) (to|in|into|through) your (inbox|letterbox|mailbox))\b",
    re.IGNORECASE,
)
# A dateline: nothing but a date, a time and the words around them ("Published Monday,
# November 18, 2019 8:22AM EST", "PUBLISHED: 10:48, Tue, Nov 19, 2019 | UPDATED: ...",
# "segunda-feira, 22 de janeiro de 2018 às 0:13"). The article's dates are metadata.
_DATE_VOCABULARY = """
jan january feb february mar march apr april may jun june jul july aug august sep sept
september oct october nov november dec december mon monday tue tues tuesday wed
wednesday thu thur thurs thursday fri friday sat saturday sun sunday janeiro fevereiro
março abril maio junho julho agosto setembro outubro novembro dezembro segunda terça
quarta quinta sexta feira sábado domingo enero febrero marzo mayo junio julio
septiembre octubre noviembre diciembre lunes martes miércoles jueves viernes janvier
février mars avril mai juin juillet août septembre octobre décembre lundi mardi
mercredi jeudi vendredi samedi dimanche januar februar märz juni juli oktober dezember
montag dienstag mittwoch donnerstag freitag samstag sonntag published updated posted
modified last first on at am pm a m p de do às à le du am um publicado atualizado
actualizado publié mis jour veröffentlicht aktualisiert st nd rd th gmt utc est edt cst
cdt mst mdt pst pdt et pt ct bst cet cest ist aest h min hrs ago
"""
_DATE_WORDS = frozenset(_DATE_VOCABULARY.split())
_YEAR = re.compile(r"\b(19|20)\d\d\b")
_TOKEN = re.compile(r"[^\W\d_]+|\d+")


# Case-insensitive matching is slow in Python's re: a branch whose first letter cannot
# match is still entered, so each of the thirty-odd alternatives is tried in turn. ASCII
# text (most of it) is lowercased and matched by a case-sensitive copy of the pattern
# instead, the same test since every letter of these patterns is lowercase (12% fewer
# instructions for the tests of the benchmark pages' short blocks). Other text keeps
# the case-insensitive pattern: re's Unicode case rules ("ſ" matches "s") are not those
# of lower(). A letter added to these patterns must be lowercase.
_RELATED_HEADING_LOWER = re.compile(_RELATED_HEADING.pattern)
_SHORT_BOILERPLATE_LOWER = re.compile(_SHORT_BOILERPLATE.pattern)


def _matches(pattern: re.Pattern[str], lower: re.Pattern[str], text: str) -> bool:
    """Does ``pattern`` (case-insensitive; ``lower`` is its case-sensitive copy) match?"""
    if text.isascii():
        return lower.match(text.lower()) is not None
    return pattern.match(text) is not None


def is_related_heading(text: str) -> bool:
    """Does this heading open a "Related stories" / "You may also like" block?"""
    return _matches(_RELATED_HEADING, _RELATED_HEADING_LOWER, text.strip())


def is_furniture(text: str, words: int) -> bool:
    """Is this short block a label, a notice or a dateline rather than article text?"""
    if words > FURNITURE_MAX_WORDS:
        return False
    text = text.strip()
    if words <= _SHORT_WORDS and _matches(_SHORT_BOILERPLATE, _SHORT_BOILERPLATE_LOWER, text):
        return True
    if words <= _DATELINE_WORDS and _is_dateline(text):
        return True
    lowered = text.lower()
    # The notice pattern is slow to search; one of these words is in each of its
    # branches. (Spelled out: a generator over a tuple of them cost three times more.)
    if not (
        "cookie" in lowered
        or "subscri" in lowered
        or "newsletter" in lowered
        or "inbox" in lowered
        or "letterbox" in lowered
        or "mailbox" in lowered
    ):
        return False
    return _NOTICE.search(text) is not None


def _is_dateline(text: str) -> bool:
    # A year starts "19" or "20": two substring tests are several times cheaper than
    # the pattern, which most short blocks would fail.
    if ("19" not in text and "20" not in text) or _YEAR.search(text) is None:
        return False
    tokens = _TOKEN.findall(text.lower())
    years = [t for t in tokens if len(t) == 4 and t.isdigit() and t[:2] in ("19", "20")]
    if not years or len(tokens) < 2:
        return False
    return all(t.isdigit() or t in _DATE_WORDS for t in tokens)
