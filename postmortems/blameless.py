"""Blameless-language prompts: point out phrasing that carries hindsight or blame.

It nudges and never blocks. The lexicon is data (`LEXICON`): each pattern has a reason and a
suggested reframing. Many of these words are ordinary English in a technical sentence ("the
health check failed to connect", "lazy loading", "just before 10:00", "the job should have
finished by then"), so some patterns carry a small extra test that keeps them quiet there:
`needs_person_subject` (the clause's subject must look like a person) and lookaheads.

Decisions, each covered by a test:
- "failed to", "should have", "could have" are flagged only with a person-like subject
  (I/we/you/he/she/they/someone/the on-call…, a capitalised name) or no subject at all
  ("Failed to page anyone."). "The cache could have expired" is a hypothesis, not hindsight.
- Hyphenated compounds are not flagged: "just-in-time", "clearly-defined", "lazy-loaded".
- "why didn't" is flagged when a person follows ("why didn't you…"); "why didn't the alert
  fire?" is a good investigative question.
- A capitalised word counts as a name unless it is a known system, a day or month, a sentence
  opener, or looks like a common noun (-ing, -tion, -ment… or a plural).
"""

import bisect
import re
from dataclasses import dataclass

# Longer input is cut here: the prompts are a writing aid, not a scanner of whole documents.
MAX_CHARS = 50_000


@dataclass(frozen=True)
class Finding:
    phrase: str  # the words as written
    start: int  # offset in the text
    end: int
    reason: str  # why this phrasing may carry hindsight or blame
    suggestion: str  # a reframing to consider


@dataclass(frozen=True)
class Pattern:
    name: str
    # Compiled case-sensitively: case-insensitive parts use (?i:...), so that a capitalised
    # name can be told from a common word. Named groups starting "name" must hold a person's
    # name for the match to count.
    regex: str
    reason: str
    suggestion: str
    # Only a finding when the clause's subject looks like a person ("I failed to", not "the
    # health check failed to").
    needs_person_subject: bool = False


# Past participles that follow "should have" / "could have" in a counterfactual. A noun or a
# number after "have" ("should have three replicas") is a requirement, not hindsight.
_IRREGULAR_PARTICIPLES = (
    "been|known|seen|done|caught|gone|run|told|made|kept|read|sent|set|put|let|left|hit|shut|"
    "split|thought|brought|taken|given|written|spoken|found|got|gotten|paid|built|held|heard|"
    "understood|chosen|begun|drawn|driven|woken|met"
)
_NOT_PARTICIPLES = "need|needed|speed|seed|feed|red|bed|shed|embed|bleed"
_PARTICIPLE = rf"(?!(?:{_NOT_PARTICIPLES})\b)(?:{_IRREGULAR_PARTICIPLES}|[a-z]+ed)"
_ADVERB = r"(?:[a-z]+ly|really|just|at\s+least|also|still|even)"
_NAME = r"\b[A-Z][a-z]+(?:[-'’][A-Z][a-z]+)?\b"
_PERSON_PRONOUN = r"(?i:I|we|you|he|she|they|someone|somebody|anyone|anybody|nobody|no\s+one)"

# Capitalised words that are not people: systems, days, months, sentence openers, and common
# nouns that often open a sentence in an incident account.
_NOT_NAMES = frozenset(
    """
    I A An The It Its This That These Those There Then When After Before While During Because
    Once If We You He She They Our Their My His Her Your Someone Nobody Everyone Everybody
    Somebody Anyone Nothing Everything Something Also Still Again Later Earlier Meanwhile
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May
    June July August September October November December Today Yesterday Tomorrow Tonight
    Kubernetes Postgres Postgresql Redis Nginx Celery Django Python Java Node Ruby Rails Go
    Rust Linux Windows Docker Kafka Elasticsearch Elastic Mysql Mongo Terraform Ansible Puppet
    Chef Jenkins Github Gitlab Git Helm Consul Vault Prometheus Grafana Datadog Sentry Slack
    Jira Confluence Cloudflare Fastly Akamai Amazon Google Azure Lambda Heroku Vercel Stripe
    Twilio Okta Chrome Firefox Safari Varnish Envoy Istio Argo Spinnaker Airflow Spark Hadoop
    Cassandra Memcached Rabbit Zookeeper Pagerduty Opsgenie Splunk Kibana Loki Jaeger Nomad
    Apache Tomcat Gunicorn Ubuntu Debian Alpine Android Macos Ios
    Deploy Deployment Release Rollback Rollout Canary Config Configuration Database Cache
    Service Server Job Cron Build Pipeline Migration Backup Failover Load Memory Disk Network
    Traffic Latency Health Gateway Proxy Cluster Node Pod Queue Worker Scheduler Script Test
    Check Alert Monitor Dashboard Replica Primary Leader Follower Autoscaler Alertmanager
    Postmortem Incident Production Staging Everyone
    """.split()
)
_COMMON_NOUN_ENDINGS = ("ing", "tion", "sion", "ment", "ness", "ity", "ics")

_PERSON_WORDS = frozenset(
    """
    i we you he she they someone somebody nobody everyone everybody anyone anybody
    engineer engineers operator operators responder responders developer developers dev devs
    sre sres admin admins on-call oncall reviewer reviewers colleague colleagues
    """.split()
)
# Words that may stand between a subject and the verb ("we then completely failed to").
_SKIPPABLE = frozenset(
    "also then just simply completely totally again still repeatedly initially apparently "
    "really probably definitely certainly clearly obviously all both".split()
)
_CONJUNCTIONS = frozenset({"and", "but", "then", "so", "yet", "or"})


def is_name(word: str) -> bool:
    """Whether a capitalised word is probably a person's name rather than a thing."""
    if not re.fullmatch(_NAME, word) or word in _NOT_NAMES:
        return False
    lower = word.lower()
    if lower.endswith(_COMMON_NOUN_ENDINGS):
        return False
    # Plurals ("Alerts", "Nodes") are things; names ending in a vowel + s (Chris, Thomas,
    # Marcus) stay names.
    if lower.endswith("s") and lower[-2] not in "aiou":
        return False
    return True


LEXICON: list[Pattern] = [
    Pattern(
        "should have",
        rf"\b(?i:should(?:n['’]t|\s+not)?(?:\s+{_ADVERB})?\s+have(?:\s+{_ADVERB})?\s+)"
        rf"{_PARTICIPLE}\b|\b(?i:should(?:n['’]t)?['’]ve)\b",
        "Hindsight: it judges a past moment against what we know now.",
        "What did you know at that moment, and what made this look reasonable at the time?",
        needs_person_subject=True,
    ),
    Pattern(
        "could have",
        rf"\b(?i:could(?:n['’]t|\s+not)?(?:\s+{_ADVERB})?\s+have(?:\s+{_ADVERB})?\s+)"
        rf"(?!(?i:been\s+(?:(?:much|a\s+lot|far|even)\s+)?(?:worse|bad|better)\b))"
        rf"{_PARTICIPLE}\b|\b(?i:could(?:n['’]t)?['’]ve)\b",
        "A counterfactual: it describes a path nobody took instead of the one people were on.",
        "Describe what did happen and what the situation looked like then.",
        needs_person_subject=True,
    ),
    Pattern(
        "failed to",
        r"\b(?i:failed\s+to)\b",
        "Says what a person did not do, judged from afterwards.",
        "What were you (or they) attending to instead, and why did that seem most important?",
        needs_person_subject=True,
    ),
    Pattern(
        "didn't notice",
        r"\b(?i:(?:didn['’]t|did\s+not|never)\s+(?:notic(?:e|ed)|spot(?:ted)?))\b",
        "Missing a signal is obvious only once you know it mattered.",
        "What did the signal look like among everything else on screen at the time?",
    ),
    Pattern(
        "obviously",
        r"(?<!-)\b(?i:obvious(?:ly)?)\b(?!-)",
        "Things look obvious with hindsight; at the time they rarely were.",
        "What made it hard to see then?",
    ),
    Pattern(
        "clearly",
        r"(?<!-)\b(?i:clearly)\b(?!-)",
        "“Clearly” implies anyone should have seen it: hindsight speaking.",
        "Describe what was on screen, and let readers judge how clear it was.",
    ),
    Pattern(
        "careless",
        r"(?<!-)\b(?i:careless(?:ly|ness)?|sloppy|sloppiness|reckless(?:ly|ness)?|"
        r"incompeten(?:t|ce))\b(?!-)",
        "Judges a person's character instead of describing the situation they were in.",
        "What pressures, tools or information shaped what happened?",
    ),
    Pattern(
        "negligent",
        r"\b(?i:negligen(?:t|tly|ce))\b",
        "A word of blame and liability; it ends the inquiry instead of opening it.",
        "What made this action look reasonable at the time?",
    ),
    Pattern(
        "lazy",
        r"\b(?i:lazy|laziness)\b(?!-|\s+(?i:load|loaded|loading|loads|evaluat\w*|init\w*|"
        r"import\w*|eval|fetch\w*|iterat\w*|propert\w*|val|values?|seq|sequences?|lists?|"
        r"streams?|compil\w*|instantiat\w*|bindings?|quer\w*|attributes?|deserializ\w*|"
        r"singletons?|objects?|modules?|routes?|components?|images?)\b)",
        "Judges a person's character instead of describing the situation they were in.",
        "What made the shortcut the sensible choice at the time?",
    ),
    Pattern(
        "human error",
        r"\b(?i:(?:human|operator|pilot)\s+errors?)\b",
        "“Human error” is where an investigation starts, not where it ends.",
        "What about the system made this action easy to take and hard to catch?",
    ),
    Pattern(
        "why didn't",
        r"\b(?i:why\s+(?:didn['’]t|did\s+not|wasn['’]t|weren['’]t|hadn['’]t|couldn['’]t|"
        r"wouldn['’]t)\s+)"
        rf"(?:{_PERSON_PRONOUN}\b|(?P<name>{_NAME}))",
        "A “why didn't you” question puts a person on the defensive.",
        "Ask “what did you see at the time?” or “what made that the next step?”",
    ),
    Pattern(
        "if only",
        r"\b(?i:if\s+only)\b"
        rf"(?=\s+(?:{_PERSON_PRONOUN}\b|(?P<name>{_NAME})|(?:\S+\s+){{0,4}}(?i:had)\b))",
        "A wish about a different past: hindsight, not learning.",
        "What would have had to be true for that to happen, and how can we make it so?",
    ),
    Pattern(
        "just",
        # Not "just-in-time", "just before/after 10:00", "just under 5%", "not just".
        r"(?<![-\w])(?i:just)\b(?![-’']|\s+(?i:before|after|as|when|then|now|in\s+time|"
        r"in\s+case|under|over|about|below|above|enough|past|around|like|because|"
        r"started|finished|arrived|landed)\b)(?<!(?i:not) just)",
        "“Just” makes an action or a fix sound trivial; it rarely was at the time.",
        "Describe the steps it took and what you had to know to take them.",
    ),
    Pattern(
        "simply",
        r"(?<!-)\b(?i:simply)\b(?!-|\s+(?i:put)\b)",
        "“Simply” makes something sound easier than it was for the person doing it.",
        "Describe what it actually took, step by step.",
    ),
    Pattern(
        "forgot to",
        r"\b(?i:forg(?:ot|otten|etting)\s+to)\b",
        "Forgetting is normal; the interesting part is what would have reminded you.",
        "What in the process or tooling could have prompted this step?",
    ),
    Pattern(
        "named cause",
        rf"\b(?i:because(?:\s+of)?|thanks\s+to|blame\s+(?:it\s+on\s+)?|fault\s+of|"
        rf"mistake\s+(?:by|of))\s+(?P<name>{_NAME})"
        rf"|(?P<name2>{_NAME})['’]s\s+(?i:fault|mistake|error|blunder|screw[- ]?up|negligence)\b"
        rf"|(?P<name3>{_NAME})\s+(?i:caused|broke|screwed\s+up|messed\s+up)\b"
        r"|\b(?i:(?:his|her|their|your)\s+(?:fault|mistake))\b",
        "Names a person as the cause. People are rarely a root cause; systems shape actions.",
        "Describe what the person did and what they knew, then what in the system let it "
        "lead to harm.",
    ),
]

_COMPILED: list[tuple[Pattern, re.Pattern]] = [(p, re.compile(p.regex)) for p in LEXICON]
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_CLAUSE_END = re.compile(r"[.!?;:]\s|\n")


def _looks_like_person(word: str) -> bool:
    return word.lower() in _PERSON_WORDS or is_name(word)


def _has_person_subject(text: str, start: int, clause_ends: list[int]) -> bool:
    """Whether the clause before `start` has a person as its subject, or no subject at all."""
    index = bisect.bisect_right(clause_ends, start) - 1
    clause_start = clause_ends[index] if index >= 0 else 0
    words = _WORD.findall(text[clause_start:start])
    while words and words[-1].lower() in _SKIPPABLE:
        words.pop()
    if not words:
        # "Failed to page the on-call." A first-person note with the "I" left out.
        return True
    if words[-1].lower() in _CONJUNCTIONS:
        # "I restarted it and failed to…": the subject is the one the sentence opened with.
        return _looks_like_person(words[0])
    if len(words) >= 2 and words[-2].lower() == "the" and words[-1].lower() in _PERSON_WORDS:
        return True  # "the on-call failed to…"
    return _looks_like_person(words[-1])


def _names_hold(match: re.Match) -> bool:
    """Every captured name group really looks like a person's name."""
    return all(
        is_name(value)
        for key, value in match.groupdict().items()
        if key.startswith("name") and value is not None
    )


def check(text: str) -> list[Finding]:
    """Findings in text order, at most one per stretch of words; never raises on any string."""
    if not text:
        return []
    text = text[:MAX_CHARS]
    clause_ends = [m.end() for m in _CLAUSE_END.finditer(text)]
    candidates: list[Finding] = []
    for pattern, regex in _COMPILED:
        for match in regex.finditer(text):
            if not _names_hold(match):
                continue
            if pattern.needs_person_subject and not _has_person_subject(
                text, match.start(), clause_ends
            ):
                continue
            candidates.append(
                Finding(
                    phrase=match.group(0),
                    start=match.start(),
                    end=match.end(),
                    reason=pattern.reason,
                    suggestion=pattern.suggestion,
                )
            )
    # Overlaps ("clearly should have known"): keep the earliest, longest, so each stretch of
    # words gets one nudge.
    candidates.sort(key=lambda f: (f.start, -(f.end - f.start)))
    findings: list[Finding] = []
    for finding in candidates:
        if findings and finding.start < findings[-1].end:
            continue
        findings.append(finding)
    return findings
