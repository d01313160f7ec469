"""The dashboard's words in Polish (the default) and English.

A plain dictionary rather than gettext catalogues: the dashboard has a few dozen labels,
and a dictionary needs no compile step. The language comes from ``?lang=`` (then kept
in the session), else the browser's ``Accept-Language``, else Polish.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request, session

LANGUAGES = ("pl", "en")
DEFAULT_LANGUAGE = "pl"

WORDS: dict[str, tuple[str, str]] = {
    # key: (Polish, English)
    "title": ("Centrum monitoringu węzła", "Hub monitoring centre"),
    "overview": ("Przegląd", "Overview"),
    "trace": ("Śledzenie", "Trace"),
    "dead_letters": ("Martwe przesyłki", "Dead letters"),
    "alerts": ("Alerty", "Alerts"),
    "actions": ("Działania operatorów", "Operator actions"),
    "login": ("Zaloguj", "Log in"),
    "logout": ("Wyloguj", "Log out"),
    "name": ("Nazwa użytkownika", "User name"),
    "password": ("Hasło", "Password"),
    "login_failed": ("Nieprawidłowa nazwa lub hasło.", "Wrong name or password."),
    "login_throttled": (
        "Zbyt wiele nieudanych prób logowania; spróbuj ponownie później.",
        "Too many failed logins; try again later.",
    ),
    "late_receipts": ("Spóźnione potwierdzenia", "Late receipts"),
    "quarantine": ("Kwarantanna", "Quarantine"),
    "next_page": ("Następna strona", "Next page"),
    "first_page": ("Pierwsza strona", "First page"),
    "due_at": ("Termin", "Due"),
    "awaited": ("Oczekiwane", "Awaited"),
    "channel": ("Kanał", "Channel"),
    "code": ("Kod", "Code"),
    "size": ("Rozmiar", "Size"),
    "address": ("Adres", "Address"),
    "office_scope": ("urząd", "office"),
    "search_by_id": (
        "Wyszukiwanie po identyfikatorze (dokumentu, sprawy, nadawcy)",
        "Search by id (document, case, sender's)",
    ),
    "forbidden": ("Brak uprawnień: potrzebna rola", "Not allowed: this needs the role"),
    "last_15m": ("Ostatni kwadrans", "Last 15 minutes"),
    "last_hour": ("Ostatnia godzina", "Last hour"),
    "last_day": ("Ostatnia doba", "Last day"),
    "received": ("Przyjęte", "Received"),
    "delivered": ("Doręczone", "Delivered"),
    "retrying": ("Ponawiane", "Retrying"),
    "dead": ("Martwe", "Dead"),
    "rejected": ("Odrzucone", "Rejected"),
    "waiting": ("Oczekujące", "Waiting"),
    "now": ("teraz", "now"),
    "throughput": ("Przepustowość (dokumenty)", "Throughput (documents)"),
    "latency": ("Czas doręczenia (ms)", "Delivery latency (ms)"),
    "offices": ("Urzędy", "Offices"),
    "office": ("Urząd", "Office"),
    "endpoints": ("Punkty docelowe", "Endpoints"),
    "endpoint": ("Punkt docelowy", "Endpoint"),
    "backlog": ("Zaległe", "Backlog"),
    "error_rate": ("Odsetek błędów", "Error rate"),
    "oldest_waiting": ("Najstarszy oczekujący", "Oldest waiting"),
    "circuit": ("Obwód", "Circuit"),
    "last_success": ("Ostatni sukces", "Last success"),
    "last_error": ("Ostatni błąd", "Last error"),
    "queues": ("Kolejki RabbitMQ", "RabbitMQ queues"),
    "queue": ("Kolejka", "Queue"),
    "messages": ("Komunikaty", "Messages"),
    "consumers": ("Konsumenci", "Consumers"),
    "not_declared": ("nie zadeklarowana", "not declared"),
    "broker_unreachable": ("RabbitMQ nieosiągalny", "RabbitMQ unreachable"),
    "pause": ("Wstrzymaj", "Pause"),
    "resume": ("Wznów", "Resume"),
    "replay": ("Ponów", "Replay"),
    "reason": ("Powód", "Reason"),
    "search": ("Szukaj", "Search"),
    "search_hint": (
        "Identyfikator dokumentu, sprawy lub dokumentu ePUAP / e-Doręczeń",
        "Envelope, case or ePUAP / e-Doręczenia document id",
    ),
    "nothing_found": ("Nic nie znaleziono.", "Nothing found."),
    "document": ("Dokument", "Document"),
    "case": ("Sprawa", "Case"),
    "status": ("Status", "Status"),
    "source": ("Źródło", "Source"),
    "destination": ("Adresat", "Destination"),
    "external_id": ("Identyfikator nadawcy", "Sender's id"),
    "sender": ("Nadawca", "Sender"),
    "journey": ("Przebieg", "Journey"),
    "time": ("Czas", "Time"),
    "step": ("Krok", "Step"),
    "since_previous": ("Od poprzedniego", "Since previous"),
    "deliveries": ("Doręczenia", "Deliveries"),
    "attempts": ("Próby", "Attempts"),
    "outcome": ("Wynik", "Outcome"),
    "duration": ("Czas trwania", "Duration"),
    "error": ("Błąd", "Error"),
    "signatures": ("Podpisy", "Signatures"),
    "valid": ("Ważny", "Valid"),
    "signer": ("Podpisujący", "Signer"),
    "receipts": ("Poświadczenia (UPP/UPD/dowody)", "Receipts (UPP/UPD/evidences)"),
    "kind": ("Rodzaj", "Kind"),
    "audit": ("Dziennik audytu", "Audit log"),
    "event": ("Zdarzenie", "Event"),
    "actor": ("Kto", "Who"),
    "details": ("Szczegóły", "Details"),
    "chain": ("Łańcuch", "Chain"),
    "headers": ("Nagłówki", "Headers"),
    "same_case": ("Inne dokumenty tej sprawy", "Other documents of this case"),
    "case_events": ("Historia sprawy", "Case history"),
    "body": ("Treść", "Body"),
    "masked": ("dane osobowe ukryte", "personal data masked"),
    "died_at": ("Zmarła", "Died"),
    "replayed": ("Ponowiono", "Replayed"),
    "not_dead": ("Już nie martwa; pozostawiono.", "No longer dead; left as it is."),
    "paused": ("Wstrzymano", "Paused"),
    "resumed": ("Wznowiono", "Resumed"),
    "rule": ("Reguła", "Rule"),
    "subject": ("Dotyczy", "Subject"),
    "summary": ("Opis", "Summary"),
    "started": ("Od", "Started"),
    "resolved": ("Zakończony", "Resolved"),
    "ongoing": ("trwa", "ongoing"),
    "none": ("brak", "none"),
    "role": ("rola", "role"),
    "sort": ("sortuj", "sort"),
}


def language() -> str:
    """The language of this request: ``?lang=``, the session's choice, or Accept-Language."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
        return chosen
    kept = session.get("lang")
    if kept in LANGUAGES:
        return str(kept)
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def translate(key: str) -> str:
    """The word for ``key`` in this request's language (the key itself if unknown)."""
    words = WORDS.get(key)
    if words is None:
        return key
    return words[LANGUAGES.index(language())]


def this_page_with(**changes: str) -> str:
    """This page's address with some query arguments changed (a sort order, a language)."""
    return f"{request.path}?{urlencode({**request.args.to_dict(), **changes})}"


def language_url(code: str) -> str:
    """This page again, in the language ``code``."""
    return this_page_with(lang=code)
