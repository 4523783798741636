"""What the bot says, in English and Russian, chosen by the event's LANGUAGE.

Every sentence is here so wording can be reviewed (and translated) in one place. Texts never
name a chat the person may not join: refusals are deliberately generic. Failure reasons are
plain words for the person; the admin's fix is in the job error and the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

_RUSSIAN: Final = frozenset({"ru", "by", "kz"})

_TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "help": "I add you to chats. Tell me what you want to join, for example: {examples}.",
        "help_bare": "I add you to chats. Tell me what you want to join; your admin knows the "
        "keywords.",
        "commands": "Commands: /join <keyword> to join by keyword, /why to see which chats "
        "the rules give you and why, /help for this help.",
        "hello": "Hello!",
        "nomatch": "I did not find a chat for that.",
        "refused": "Sorry, I can't add you to that: it is not open to you. If you think it "
        "should be, ask your Bitrix24 admin.",
        "refused_some": "Anything else you asked for is not open to you.",
        "limited": "You are sending requests too fast. Please wait a minute and try again.",
        "busy": "I am getting too many requests right now. Please try again in a minute.",
        "queued": "Your request is queued: Bitrix24 is not accepting the change yet. I will "
        "write again when it is done.",
        "added": "Done: you are now in {chats}.",
        "already": "You were already in {chats}.",
        "failed": "I could not add you to {chat}: {reason}.",
        "and": "and",
        "quote": "“{}”",
        "chat": "chat {}",
        "ACCESS_DENIED_EXTEND": "I am not allowed to add people to that chat — an admin needs "
        "to add the service account to it",
        "ACCESS_ERROR": "that chat does not accept new members",
        "missing": "that chat does not exist any more — an admin needs to fix the rules",
        "dropped": "Bitrix24 did not add you — your account may be inactive",
        "other": "something went wrong ({code}) — an admin can see the details",
        "why_private": "I answer /why only in a private chat with me: the answer is about you.",
        "why_departments": "Your departments: {departments}.",
        "why_no_departments": "You are in no department.",
        "why_inactive": "Bitrix24 does not list you as an active user, so no rule applies to you.",
        "why_no_rules": "No rule gives you any chat.",
        "why_chats": "Chats:",
        "why_rule": "rule {rules}",
        "why_rules": "rules {rules}",
        "why_work": "Not finished:",
        "why_adding": "adding you is queued",
        "why_removing": "removing you is queued",
        "why_more": "…and {count} more.",
        "why_keywords": "If you ask, I can also add you to {chats}.",
        "state_member": "you are in it",
        "state_will_add": "you are not in it yet; the next sync adds you",
        "state_kept_out": "you left it, so you are not added again",
        "state_will_remove": "you are in it; the next sync removes you",
        "state_kept": "you are in it; no rule gives it now, so you stay",
        "state_outside": "you are not in it; no rule gives it to you",
        "state_unreadable": "I could not check its members right now",
    },
    "ru": {
        "help": "Я добавляю в чаты. Напишите, куда хотите вступить, например: {examples}.",
        "help_bare": "Я добавляю в чаты. Напишите, куда хотите вступить; ключевые слова знает "
        "ваш администратор.",
        "commands": "Команды: /join <слово> — вступить по ключевому слову, /why — какие чаты "
        "вам положены по правилам и почему, /help — эта подсказка.",
        "hello": "Здравствуйте!",
        "nomatch": "Я не нашёл чат по этому запросу.",
        "refused": "К сожалению, я не могу добавить вас туда: это вам недоступно. Если это "
        "ошибка, обратитесь к администратору Bitrix24.",
        "refused_some": "Остальное из запрошенного вам недоступно.",
        "limited": "Вы отправляете запросы слишком часто. Подождите минуту и попробуйте снова.",
        "busy": "Сейчас у меня слишком много запросов. Попробуйте через минуту.",
        "queued": "Ваш запрос в очереди: Bitrix24 пока не принимает изменение. Я напишу, "
        "когда всё будет готово.",
        "added": "Готово, вы добавлены: {chats}.",
        "already": "Вы уже были участником: {chats}.",
        "failed": "Не удалось добавить вас в {chat}: {reason}.",
        "and": "и",
        "quote": "«{}»",
        "chat": "чат {}",
        "ACCESS_DENIED_EXTEND": "мне не разрешено добавлять людей в этот чат — администратору "
        "нужно добавить в него служебную учётную запись",
        "ACCESS_ERROR": "этот чат не принимает новых участников",
        "missing": "этого чата больше нет — администратору нужно исправить правила",
        "dropped": "Bitrix24 не добавил вас — возможно, ваша учётная запись неактивна",
        "other": "что-то пошло не так ({code}) — подробности есть у администратора",
        "why_private": "На /why я отвечаю только в личном чате со мной: ответ касается только вас.",
        "why_departments": "Ваши подразделения: {departments}.",
        "why_no_departments": "Вы не состоите ни в одном подразделении.",
        "why_inactive": "В Bitrix24 вы не числитесь активным сотрудником, поэтому правила к вам "
        "не применяются.",
        "why_no_rules": "Ни одно правило не даёт вам ни одного чата.",
        "why_chats": "Чаты:",
        "why_rule": "правило {rules}",
        "why_rules": "правила {rules}",
        "why_work": "Не завершено:",
        "why_adding": "добавление в очереди",
        "why_removing": "исключение в очереди",
        "why_more": "…и ещё {count}.",
        "why_keywords": "По запросу я могу добавить вас ещё сюда: {chats}.",
        "state_member": "вы участник",
        "state_will_add": "вас там пока нет; добавлю при следующей синхронизации",
        "state_kept_out": "вы вышли сами, повторно не добавляю",
        "state_will_remove": "вы участник; при следующей синхронизации вас исключат",
        "state_kept": "вы участник; сейчас его не даёт ни одно правило, но вас не исключают",
        "state_outside": "вас там нет; ни одно правило его вам не даёт",
        "state_unreadable": "сейчас не удалось проверить участников",
    },
}
_MISSING_CHAT: Final = frozenset({"CHAT_ID_EMPTY", "DIALOG_ID_EMPTY", "EMPTY_CHAT_ID"})


def language(code: str) -> str:
    """The reply language for a Bitrix24 LANGUAGE id; English unless Russian fits better."""
    return "ru" if code.strip().lower() in _RUSSIAN else "en"


def say(lang: str, key: str, **values: str) -> str:
    text = _TEXTS[language(lang)][key]
    return text.format(**values) if values else text


def help_text(lang: str, examples: Sequence[str], *, greeting: bool = False) -> str:
    """Help lists only keywords anyone may use, so it reveals no restricted chat."""
    quoted = ", ".join(say(lang, "quote").format(e) for e in examples)
    body = say(lang, "help", examples=quoted) if examples else say(lang, "help_bare")
    parts = [say(lang, "hello")] if greeting else []
    return " ".join([*parts, body]) + "\n" + say(lang, "commands")


def chat_label(lang: str, chat_id: int, name: str | None) -> str:
    return say(lang, "quote").format(name) if name else say(lang, "chat").format(chat_id)


def enumerate_names(lang: str, labels: Sequence[str]) -> str:
    if len(labels) <= 1:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} {say(lang, 'and')} {labels[-1]}"


def reason(lang: str, outcome: str, code: str | None) -> str:
    """Why one chat failed, in words the person can act on (or pass on to the admin)."""
    if outcome == "dropped":
        return say(lang, "dropped")
    if code in {"ACCESS_DENIED_EXTEND", "ACCESS_ERROR"}:
        return say(lang, code)
    if code in _MISSING_CHAT:
        return say(lang, "missing")
    return say(lang, "other", code=code or "UNKNOWN")


def mention(user_id: int, name: str) -> str:
    """`[USER=id]name[/USER]`: addresses the author in a group chat."""
    safe = name.replace("[", "").replace("]", "").strip() or str(user_id)
    return f"[USER={user_id}]{safe}[/USER]"


@dataclass(frozen=True, slots=True)
class ChatResult:
    """How one chat of a request ended: `added`, `already_member`, `dropped`, or `failed`."""

    chat_id: int
    label: str
    outcome: str
    code: str | None = None


def result_text(
    lang: str,
    results: Sequence[ChatResult],
    templates: Sequence[tuple[str, Sequence[int]]],
    *,
    name: str,
    first_name: str,
    refused_some: bool,
) -> str:
    """The final answer: a rule's own `reply:` for the chats it added, honest defaults else."""
    by_chat = {r.chat_id: r for r in results}
    told: set[int] = set()
    lines: list[str] = []
    for template, chats in templates:
        mine = [c for c in chats if c not in told and _outcome(by_chat, c) == "added"]
        if not mine:
            continue
        joined = enumerate_names(lang, [by_chat[c].label for c in mine])
        try:
            lines.append(template.format(name=name, first_name=first_name, chats=joined))
        except (KeyError, IndexError, ValueError):
            continue  # the loader validates templates; never let one break the reply
        told.update(mine)
    for outcome, key in (("added", "added"), ("already_member", "already")):
        labels = [r.label for r in results if r.outcome == outcome and r.chat_id not in told]
        if labels:
            lines.append(say(lang, key, chats=enumerate_names(lang, labels)))
    for r in results:
        if r.outcome in {"dropped", "failed"}:
            why = reason(lang, r.outcome, r.code)
            lines.append(say(lang, "failed", chat=r.label, reason=why))
    if refused_some:
        lines.append(say(lang, "refused_some"))
    return "\n".join(lines)


def _outcome(by_chat: dict[int, ChatResult], chat_id: int) -> str:
    found = by_chat.get(chat_id)
    return found.outcome if found else ""
