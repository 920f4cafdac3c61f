"""A rough background of ordinary news: what share of news articles use a word.

`rules suggest` ranks a document's words by how much more they say there
than in ordinary news. Before enough articles are stored to measure that,
it uses these shares: written for this project from general knowledge of
news writing (not counted from any corpus), in bands, so they are rough by
design: a word's band matters, not its digits. Words not listed count as
rare (`RARE_SHARE`): names, jargon, the subject of a document.

Each line is ``share: words``; a share is the fraction of articles in
which the word appears, in the news this monitor reads: business and
technology desks first, general news after. So "tech", "innovation" and
"companies" are common here, as they are in the feeds.
"""

from __future__ import annotations

RARE_SHARE = 0.0005

_BANDS = """
0.30: set means way ways end long good great important best better major key main
0.25: come comes came take takes took give gives gave show shows showed keep keeps kept move moves moved
0.25: get gets got put puts run runs open opened close closed start started begin began build built
0.20: area areas place places home family life world human local future history story stories
0.20: right rights left point points case cases issue issues question questions problem problems
0.20: early later late already around around around across found find finds look looks looking
0.15: potential purpose shift protect protection balance balancing flexibility flexible focus focused
0.15: role roles value values position positions step steps effort efforts move process approach
0.15: terms term model models sign signs signed signal signals ability chance risk risks risky
0.15: deep deeper strong stronger clear clearly likely unlikely possible continue continued continues
0.15: grows highly very really quite often usually
0.15: grow growing grew rise rising rose fall falling fell increase increased decrease reduce reduced
0.12: key critical central core essential significant broader broad wider wide full fully whole
0.12: offer offers offered provide provides provided bring brings brought allow allows allowed
0.12: remain remains remained become becomes became seem seems seemed lead leads led hold holds held
0.12: expect expects expected expected decision decisions move moves talks talk talked discuss
0.10: evolving evolve evolved landscape era moment moments path paths direction tension tensions
0.10: means meaning mean balance interests interest stake stakes priority priorities vision mission
0.10: sector sectors space spaces field fields race races battle battles fight fights
0.08: ambition ambitions ambitious dominance dominant landscape ecosystem ecosystems scale scaling
0.08: alliance alliances collaboration collaborations cooperation relations ties tie rivalry
0.08: transform transformation transformative disruption disruptive breakthrough breakthroughs
0.45: tech technology innovation companies future industry digital access platform
0.60: said year years time people first last told week percent
0.40: company companies government state million including since part made make group
0.30: world country day days month months report plan plans work help need next team according
0.25: business market news today percent billion public money price prices number official officials
0.20: new deal deals president chief executive support change changes use used using based
0.20: announced statement service services growth cost costs industry global national local
0.18: future system power control level plans major former high large small recent leader leaders
0.15: data technology tech digital online platform users customers product products launch launched
0.15: investors shares share stock economy economic financial bank fund funding board sales revenue
0.12: agreement partners partner strategy competition rival rivals business businesses firm firms
0.12: access tools tool development develop project projects program programs research policy policies
0.10: innovation investment investments capital profit profits quarter earnings market markets growth
0.10: relationship partnership partnerships leadership interview director manager employees workers jobs
0.08: software internet app apps mobile phone phones computer computing network security platform
0.08: lawsuit court judge legal law laws rules regulators regulation regulatory deal merger acquisition
0.06: cloud artificial intelligence ai model models startup startups venture valuation competitor
0.06: chip chips infrastructure energy electricity contract contracts license licensing exclusive
0.04: nonprofit enterprise subscription subscriptions chatbot chatbots algorithm algorithms automation
0.03: antitrust stake stakeholders equity shareholders listing offering restructuring governance
0.01: ipo
0.02: supercomputer supercomputing datacenter datacenters gpu gpus inference benchmark
"""


def _shares() -> dict[str, float]:
    out: dict[str, float] = {}
    for line in _BANDS.strip().splitlines():
        share, words = line.split(":", 1)
        for word in words.split():
            out.setdefault(word, float(share))  # a word listed twice keeps its first (higher) band
    return out


SHARES: dict[str, float] = _shares()


def share(words: tuple[str, ...]) -> float:
    """The rough share of news articles using these (lower-case) words together.

    A phrase is rarer than its rarest word (a tenth of it, per extra word),
    but no rarer than an unlisted word: a phrase of a rare name and a
    common word says little more than the name.
    """
    shares = sorted(SHARES.get(w, RARE_SHARE) for w in words)
    return max(shares[0] * (0.1 ** (len(words) - 1)), RARE_SHARE)
