"""The shipped rules on real text, and on the hard negatives real text is full of.

The real tuning set (../shared/labeled/tuning_articles.jsonl, 222 excerpts of
other people's pages) is read in place through `monitor rules eval`, as an
analyst would run it, and skipped when ../shared is not there; none of its
text is copied here. The two halves of the set (by id parity) are checked on
their own too: the rules were tuned by checking that edits made looking at
one half also improved the other, and a rule that learned single items of
one half would show here as a weak half.

The hard negatives below are our own sentences, a handful per category the
set's README names: each shares the beat's words but not its subject, so
the exclusions and NEAR pairings are checked in general, not on the
tuning items. Beside them, positives written the way the missed real items
were written (untitled, forum-like, the headline as the first line).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rules import default_rule_files, load_rules

ROOT = Path(__file__).resolve().parents[1]
TUNING = ROOT.parent / "shared" / "labeled" / "tuning_articles.jsonl"
RULES = load_rules(default_rule_files())

needs_tuning_set = pytest.mark.skipif(not TUNING.is_file(), reason="../shared/labeled/tuning_articles.jsonl not present")


def eval_json(labels: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "rules", "eval", str(labels), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@needs_tuning_set
def test_shipped_rules_reach_the_goal_on_the_real_tuning_set() -> None:
    report = eval_json(TUNING)
    assert report["tp"] + report["fn"] == 111  # the set this test was written for
    assert report["precision"] >= 0.95, report["false_positives"]
    assert report["recall"] >= 0.95, report["false_negatives"]
    # Every tag of the beat is measured.
    assert {"partnership", "investment", "azure", "copilot", "pbc", "ipo", "lawsuit", "enterprise",
            "data_centers", "api"} <= set(report["per_tag"])


@needs_tuning_set
@pytest.mark.parametrize("parity", [0, 1], ids=["even-ids", "odd-ids"])
def test_each_half_of_the_tuning_set_holds_on_its_own(tmp_path: Path, parity: int) -> None:
    lines = [line for line in TUNING.read_text(encoding="utf-8").splitlines() if line.strip()]
    half = [line for line in lines if int(json.loads(line)["id"].rsplit("-", 1)[1]) % 2 == parity]
    labels = tmp_path / "half.jsonl"
    labels.write_text("\n".join(half) + "\n", encoding="utf-8")
    report = eval_json(labels)
    assert report["tp"] + report["fp"] + report["fn"] + report["tn"] == len(half)
    assert report["precision"] >= 0.93 and report["recall"] >= 0.93, (report["false_positives"], report["false_negatives"])


# Our own sentences; no title, the headline is the first line, as in real feeds.
HARD_NEGATIVES = {
    "other IPOs": [
        "Chip designer files for IPO\nThe company, whose accelerators run models like ChatGPT, plans a Nasdaq listing "
        "next month and counts Microsoft among its customers.",
        "Cloud GPU renter sets IPO range\nThe firm rents capacity to AI labs including OpenAI and hopes to raise $1.5 "
        "billion in its initial public offering.",
        "Fintech lender prices its initial public offering above range, valuing it at $15 billion; the chief executive "
        "said the company uses ChatGPT for customer service.",
    ],
    "Copilot and Azure OpenAI how-tos": [
        "Five Copilot prompts for Excel\nIn this guide you will learn how to ask Copilot to build pivot tables, "
        "and how it compares with ChatGPT for formulas. Follow these steps to turn it on.",
        "Quickstart: deploy a GPT-4o model in Azure OpenAI\nPrerequisites: an Azure subscription and a resource group. "
        "Create a deployment, copy the endpoint and key, and set the api-version.",
        "Copilot vs ChatGPT for writing emails: a buyer's guide\nWhich assistant is better for your team? We compare "
        "pricing, features and which one most users prefer, step by step.",
        "Tutorial: rate limits and quota in Azure OpenAI Service\nWhen demand exceeds your deployment's capacity, the "
        "endpoint returns 429; this walkthrough shows how to request more quota from Microsoft.",
        "Copilot vs ChatGPT: which rival wins for students? A buyer's guide\nWe tested both step by step; most testers "
        "preferred ChatGPT for essays and Copilot for Office files, and ChatGPT's market share is no reason to pick it.",
        "GitHub Copilot now lets developers pick OpenAI or Anthropic models\nThe coding assistant competes with rival "
        "editors on price and relies on OpenAI models by default; switch models from the chat panel.",
    ],
    "buyer's guides": [
        "Copilot or ChatGPT: which should you choose?\nBoth run on the same models, since Microsoft's partnership "
        "with OpenAI gives Copilot GPT-5. We compare price and Office integration so you can pick the right one for "
        "your team.",
        "ChatGPT Plus vs Microsoft Copilot Pro: pros and cons\nMicrosoft's $13 billion investment in OpenAI means "
        "Copilot gets the same models; here is which is better for students, writers and coders.",
    ],
    "Azure outages": [
        "Azure outage hits Teams and Outlook\nA configuration change in Azure Front Door caused errors for Microsoft "
        "customers across Europe for four hours; the company published a post-incident review.",
        "Microsoft says a storage failure in its East US Azure region is resolved; virtual machines and databases were "
        "unavailable for part of the day.",
    ],
    "other public benefit corporations": [
        "Outdoor brand becomes a public benefit corporation\nThe founders said the new structure lets the board weigh "
        "the environment alongside profit, like other mission-driven firms.",
        "Crowdfunding site reincorporates as a benefit corporation and rules out going public; investors approved the "
        "change.",
        "Rival AI lab's trust can appoint board members of its public benefit corporation, a governance model it says "
        "protects its mission from investors.",
    ],
    "PBC the disease": [
        "Primary biliary cholangitis (PBC) is a chronic liver disease; first-line treatment is ursodeoxycholic acid, "
        "and second-line drugs are considered after a year.",
        "New trial results for PBC patients\nThe drug lowered alkaline phosphatase in people with primary biliary "
        "cholangitis who did not respond to standard therapy.",
    ],
    "Stargate the TV show and film": [
        "Stargate SG-1 season 3 review\nThe team steps through the gate to a world of data crystals and a giant "
        "computer that runs the planet; one of the best episodes of the season.",
        "The 1994 film Stargate is now streaming; the story of an Egyptologist and a colonel who travel through an "
        "ancient ring still holds up.",
        "Stargate Atlantis rewatch: the episode where the city's power plant fails and the team must find a new energy "
        "source before the shield collapses.",
    ],
    "other Musk suits": [
        "Judge rejects Musk's pay package again\nThe Delaware court said the Tesla board's approval process was "
        "flawed; Musk's lawyers plan an appeal.",
        "SEC sues Musk over late disclosure of his Twitter stake, saying he bought shares at artificially low prices "
        "before revealing it.",
        "Musk's lawyers ask a jury to throw out a defamation suit brought by a former Tesla employee over posts on X.",
    ],
    "other companies' data centers": [
        "Social network plans a 2-gigawatt data center campus in Louisiana to train its own models, its largest "
        "infrastructure project to date.",
        "Search giant to spend $10 billion on data centers and offices across 11 states this year, adding thousands "
        "of construction jobs.",
        "xAI expands its Memphis supercomputer\nThe startup is adding 100,000 GPUs to the site, drawing complaints "
        "about gas turbines from residents.",
    ],
    "Anthropic deals": [
        "Amazon to invest another $4 billion in Anthropic\nMicrosoft holds a $13 billion investment in OpenAI; "
        "Amazon's stake in Anthropic answers it, with AWS as Anthropic's primary cloud provider.",
        "Google agrees to supply up to one million TPUs to Anthropic in a deal worth tens of billions of dollars, "
        "expanding the lab's compute capacity.",
        "Anthropic raises $13 billion at a $183 billion valuation, led by investors who also back rival labs; the "
        "Claude maker's revenue has tripled.",
        "The FTC is examining Amazon's and Google's investments in Anthropic, asking whether the cloud deals give them "
        "control of the AI lab.",
    ],
    "Microsoft AI without OpenAI": [
        "Microsoft releases small Phi models\nThe open models run on laptops and are available in Azure AI Foundry; "
        "the company says they beat larger rivals on reasoning benchmarks.",
        "Microsoft AI unveils its first in-house voice model, MAI-Voice-1, and a text model in preview, built by the "
        "team led by Mustafa Suleyman.",
        "Microsoft earnings: Azure revenue grew 33% as demand for AI services rose; Xbox and Windows declined.",
        "EU regulators open an antitrust probe into Microsoft's bundling of Teams with Office; the company offered to "
        "sell the apps separately.",
    ],
    "UK Intellectual Property Office": [
        "How to register a trade mark with the UK IPO\nThe Intellectual Property Office examines your application "
        "and publishes it for two months before registration.",
        "The IPO has raised patent fees from April; applicants filing online pay less than those filing on paper.",
    ],
    "other firms' partnerships": [
        "Salesforce and Google Cloud expand their partnership on AI agents, letting customers run Gemini models "
        "inside the CRM.",
        "Workday names Google Cloud its preferred cloud provider in a multiyear strategic partnership.",
    ],
}

# Written the way the tuning set's missed items were: each needs vocabulary
# the rules lacked (the board crisis, suits naming both, forum spellings,
# compute deals beyond Azure, Musk's suit without naming OpenAI).
NEAR_MISS_POSITIVES = [
    ("partnership", "Nadella on the weekend OpenAI's board fired Sam Altman\nMicrosoft's chief executive said he "
     "learned of the ouster minutes before the announcement and offered Altman a job at Microsoft."),
    ("lawsuit", "Authors' group sues OpenAI and Microsoft over training data\nThe complaint names both companies as "
     "defendants and seeks damages for copyright infringement."),
    ("lawsuit", "Reading the verdict: the jury found that Elon knew by 2019, when the Microsoft money came in, that the "
     "charitable trust he says was breached was at risk, so his suit came too late."),
    ("azure", "OpenAI signs a $30 billion compute deal with Oracle\nThe agreement adds cloud capacity well beyond what "
     "Microsoft's Azure supplies."),
    ("partnership", "honestly azure is the only channel open ai can sell through under that deal, MS holds all the "
     "cards on the cloud side"),
    ("investment", "OpenAI closes a round to raise $40 billion in new funding, valuing the ChatGPT maker at $300 billion; "
     "Microsoft, its largest backer, participated."),
    ("partnership", "Regulators take a second look\nThe FTC is asking whether Microsoft effectively steers OpenAI, in "
     "an antitrust inquiry that also covers other AI labs."),
    ("partnership", "Tensions between Microsoft and OpenAI are growing, people familiar with the matter said, with each "
     "side accusing the other of overreach."),
    ("ipo", "OpenAI hires bankers for a possible listing\nThe ChatGPT maker is weighing a stock market flotation as "
     "soon as next year, people briefed on the plans said."),
    ("pbc", "State attorney general drops objections to OpenAI's recapitalization after the company agreed to new "
     "safety commitments."),
    ("copilot", "Microsoft's Copilot app trails ChatGPT badly in downloads\nData from an app tracker show the gap "
     "widening for a third month."),
    ("copilot", "Copilot keeps losing ground\nMicrosoft's assistant has a small share of chatbot users, surveys show, "
     "while ChatGPT remains the leader by a wide margin."),
]


CASES = [pytest.param(text, id=f"{category}-{i}") for category, texts in HARD_NEGATIVES.items() for i, text in enumerate(texts)]


@pytest.mark.parametrize("text", CASES)
def test_hard_negatives_of_each_category_are_not_flagged(text: str) -> None:
    tagging = RULES.evaluate({"title": None, "text": text})
    assert not tagging.flagged, sorted({m.rule for m in tagging.matches})


@pytest.mark.parametrize(("tag", "text"), NEAR_MISS_POSITIVES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(NEAR_MISS_POSITIVES)])
def test_untitled_beat_stories_in_real_wording_are_flagged_with_their_tag(tag: str, text: str) -> None:
    tagging = RULES.evaluate({"title": None, "text": text})
    assert tagging.flagged and tag in tagging.tags, (tagging.score, tagging.tags)


def test_a_title_how_to_is_excluded_when_the_feed_gives_one() -> None:
    text = "Copilot or ChatGPT? Copilot is losing users to its rival ChatGPT, the market leader, in our office."
    assert "copilot" in RULES.evaluate({"title": None, "text": text}).tags
    assert "copilot" not in RULES.evaluate({"title": "How to choose between Copilot and ChatGPT", "text": text}).tags
