"""The cast of the demo (PMOs, managers, names) and the books its generator keeps."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


@dataclass
class Pmo:
    key: str
    name: str
    pmo_type: str
    currency: str
    envelope: Decimal
    owner: str
    objectives: list[tuple[str, str, str]]
    programs: list[tuple[str, str]]
    committed: Decimal = Decimal(0)


PORTFOLIOS = [
    Pmo("PF-WORKPLACE", "Digital Workplace PMO", "supportive", "EUR", Decimal("9000000.00"),
        "Clara Nowak", [("OBJ-W1", "Hybrid work for every team", "0.5"),
                        ("OBJ-W2", "Cut licence spend", "0.3"),
                        ("OBJ-W3", "Security baseline", "0.2")],
        [("PRG-W-COLLAB", "Collaboration suite"), ("PRG-W-DEVICES", "Device refresh")]),
    Pmo("PF-FINANCE", "Finance Transformation PMO", "controlling", "USD", Decimal("7500000.00"),
        "Marcus Reed", [("OBJ-F1", "Close the books in 3 days", "0.4"),
                        ("OBJ-F2", "One ERP", "0.4"), ("OBJ-F3", "Audit readiness", "0.2")],
        [("PRG-F-ERP", "ERP consolidation"), ("PRG-F-REPORTING", "Management reporting")]),
    Pmo("PF-INFRA", "Infrastructure PMO", "directive", "GBP", Decimal("6000000.00"),
        "Priya Shah", [("OBJ-I1", "Exit the old data centre", "0.6"),
                       ("OBJ-I2", "99.95% availability", "0.4")],
        [("PRG-I-CLOUD", "Cloud migration"), ("PRG-I-NETWORK", "Network renewal")]),
]

MANAGERS = [
    ("MGR-01", "Ana Silva", "senior"), ("MGR-02", "Ben Okafor", "senior"),
    ("MGR-03", "Chloe Martin", "lead"), ("MGR-04", "David Kim", "mid"),
    ("MGR-05", "Elena Rossi", "senior"), ("MGR-06", "Farid Haddad", "mid"),
    ("MGR-07", "Grace Liu", "lead"), ("MGR-08", "Hugo Becker", "mid"),
    ("MGR-09", "Ines Garcia", "senior"), ("MGR-10", "Jonas Berg", "junior"),
    ("MGR-11", "Kavya Iyer", "mid"), ("MGR-12", "Liam O'Brien", "senior"),
    ("MGR-13", "Maya Cohen", "junior"), ("MGR-14", "Noah Dubois", "mid"),
    ("MGR-15", "Olga Petrova", "lead"),
]

PROJECT_NAMES = [
    "CRM migration", "Payroll replacement", "Data warehouse refresh", "Mobile field app",
    "Identity and access overhaul", "Branch network upgrade", "Invoice automation",
    "Customer portal", "Backup modernisation", "Treasury system", "Intranet relaunch",
    "Laptop refresh wave", "Contract lifecycle tool", "Service desk consolidation",
    "Procurement e-catalogue", "Storage tiering", "Expense app", "Email archive migration",
    "Planning and forecasting tool", "Edge firewall renewal", "Chatbot pilot",
    "Tax engine upgrade", "Kubernetes platform", "Records retention",
]

SUMMARIES = [
    "On track; next milestone within reach.", "Vendor delivery slipped a week.",
    "Testing found integration defects; fixing.", "Steering committee approved the scope.",
    "Team at full strength again.", "Costs trending above plan; reviewing.",
    "Pilot users report good adoption.", "Waiting on security sign-off.",
]

ACTORS = {"urn:pmo:jira": ["jira-automation", "alice@pmo.example", "bob@pmo.example"],
          "urn:pmo:governance": ["steering-committee"], "urn:finance:sap": ["sap-batch"],
          "urn:msproject:pmo": ["msproject-sync"], "urn:hr:workday": ["workday-sync"],
          "urn:pmo:resourcing": ["resource-board"], "urn:pmo:status": ["status-bot"]}


class Sim:
    """The events emitted so far and the books the domain will check them against."""

    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.start = start
        self.events: list[dict[str, Any]] = []
        self.capacity: dict[str, int] = {}
        self.held: dict[str, set[str]] = {}
        self.clock = 0  # minutes into the current week: events of one week keep their order
        self._portfolios = {p.key: Pmo(**{**vars(p), "committed": Decimal(0)})
                            for p in PORTFOLIOS}

    def portfolio(self, key: str) -> Pmo:
        return self._portfolios[key]

    def day(self, week: int) -> date:
        return (self.start + timedelta(weeks=week)).date()

    def release(self, manager: str | None, project: str) -> None:
        if manager is not None:
            self.held[manager].discard(project)

    def emit(self, week: int, type_: str, subject: str, source: str,
             data: dict[str, Any]) -> None:
        self.clock += 2
        time = self.start + timedelta(weeks=week, hours=8, minutes=self.clock)
        self.events.append({
            "specversion": "1.0", "id": f"demo-{self.seed}-{len(self.events) + 1:06d}",
            "source": source, "type": type_, "subject": subject,
            "time": time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "actor": self.rng.choice(ACTORS[source]), "data": data})
