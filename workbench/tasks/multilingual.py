"""The multilingual family: numbers 0..99 in words and a small lexicon, in French, Spanish and German.

Number words follow TASKS.md: French in the traditional spelling (``vingt et un``,
``soixante et onze``, ``quatre-vingts``, ``quatre-vingt-un``), Spanish with the one-word forms up
to 29 (``veintidós``), German with ``ein`` inside compounds (``einundzwanzig``). Lower case, accents
kept.
"""

from __future__ import annotations

import random

from workbench.tasks import Task
from workbench.tasks.answers import answer_line
from workbench.tasks.phrasing import choose

LANGS = ("French", "Spanish", "German")

PHRASINGS = {
    "multilingual.number": ("How do you write {n} in {lang}?", "Write the number {n} in {lang} words.",
                            "What is {n} in {lang}, written out?"),
    "multilingual.translate": ("Translate into {lang}: {word}", "What is the {lang} word for {word}?",
                               "Give the {lang} for: {word}"),
}

FRENCH_UNITS = ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
                "onze", "douze", "treize", "quatorze", "quinze", "seize")
FRENCH_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}

SPANISH_UNITS = ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
                 "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho",
                 "diecinueve", "veinte", "veintiuno", "veintidós", "veintitrés", "veinticuatro",
                 "veinticinco", "veintiséis", "veintisiete", "veintiocho", "veintinueve")
SPANISH_TENS = {3: "treinta", 4: "cuarenta", 5: "cincuenta", 6: "sesenta", 7: "setenta", 8: "ochenta",
                9: "noventa"}

GERMAN_UNITS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
                "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn",
                "neunzehn")
GERMAN_TENS = {2: "zwanzig", 3: "dreißig", 4: "vierzig", 5: "fünfzig", 6: "sechzig", 7: "siebzig",
               8: "achtzig", 9: "neunzig"}

# English word -> (French, Spanish, German), without articles; German nouns capitalised.
LEXICON = {
    # animals
    "cat": ("chat", "gato", "Katze"), "dog": ("chien", "perro", "Hund"), "horse": ("cheval", "caballo", "Pferd"),
    "bird": ("oiseau", "pájaro", "Vogel"), "fish": ("poisson", "pez", "Fisch"), "cow": ("vache", "vaca", "Kuh"),
    "mouse": ("souris", "ratón", "Maus"), "pig": ("cochon", "cerdo", "Schwein"), "sheep": ("mouton", "oveja", "Schaf"),
    "rabbit": ("lapin", "conejo", "Kaninchen"), "bear": ("ours", "oso", "Bär"), "wolf": ("loup", "lobo", "Wolf"),
    "lion": ("lion", "león", "Löwe"), "duck": ("canard", "pato", "Ente"), "frog": ("grenouille", "rana", "Frosch"),
    # colours
    "red": ("rouge", "rojo", "rot"), "blue": ("bleu", "azul", "blau"), "green": ("vert", "verde", "grün"),
    "black": ("noir", "negro", "schwarz"), "white": ("blanc", "blanco", "weiß"),
    "yellow": ("jaune", "amarillo", "gelb"), "grey": ("gris", "gris", "grau"), "pink": ("rose", "rosa", "rosa"),
    # nouns
    "house": ("maison", "casa", "Haus"), "water": ("eau", "agua", "Wasser"), "bread": ("pain", "pan", "Brot"),
    "book": ("livre", "libro", "Buch"), "tree": ("arbre", "árbol", "Baum"), "sun": ("soleil", "sol", "Sonne"),
    "moon": ("lune", "luna", "Mond"), "apple": ("pomme", "manzana", "Apfel"), "school": ("école", "escuela", "Schule"),
    "car": ("voiture", "coche", "Auto"), "city": ("ville", "ciudad", "Stadt"), "door": ("porte", "puerta", "Tür"),
    "window": ("fenêtre", "ventana", "Fenster"), "table": ("table", "mesa", "Tisch"),
    "chair": ("chaise", "silla", "Stuhl"), "flower": ("fleur", "flor", "Blume"), "milk": ("lait", "leche", "Milch"),
    "hand": ("main", "mano", "Hand"), "night": ("nuit", "noche", "Nacht"), "sea": ("mer", "mar", "Meer"),
    "mountain": ("montagne", "montaña", "Berg"), "cheese": ("fromage", "queso", "Käse"),
    "key": ("clé", "llave", "Schlüssel"), "garden": ("jardin", "jardín", "Garten"),
    "star": ("étoile", "estrella", "Stern"), "snow": ("neige", "nieve", "Schnee"), "king": ("roi", "rey", "König"),
    "boat": ("bateau", "barco", "Boot"), "friend": ("ami", "amigo", "Freund"), "day": ("jour", "día", "Tag"),
}


def french(n: int) -> str:
    """``n`` (0..99) in French words, traditional spelling."""
    if n <= 16:
        return FRENCH_UNITS[n]
    if n < 20:
        return "dix-" + FRENCH_UNITS[n - 10]
    tens, unit = divmod(n, 10)
    if tens == 7:  # soixante-dix .. soixante-dix-neuf: sixty plus 10..19
        return "soixante et onze" if n == 71 else "soixante-" + french(n - 60)
    if tens == 8:
        return "quatre-vingts" if unit == 0 else "quatre-vingt-" + FRENCH_UNITS[unit]
    if tens == 9:  # quatre-vingt-dix .. quatre-vingt-dix-neuf: eighty plus 10..19
        return "quatre-vingt-" + french(n - 80)
    if unit == 0:
        return FRENCH_TENS[tens]
    return FRENCH_TENS[tens] + (" et un" if unit == 1 else "-" + FRENCH_UNITS[unit])


def spanish(n: int) -> str:
    """``n`` (0..99) in Spanish words."""
    if n < 30:
        return SPANISH_UNITS[n]
    tens, unit = divmod(n, 10)
    return SPANISH_TENS[tens] + (f" y {SPANISH_UNITS[unit]}" if unit else "")


def german(n: int) -> str:
    """``n`` (0..99) in German words."""
    if n < 20:
        return GERMAN_UNITS[n]
    tens, unit = divmod(n, 10)
    if unit == 0:
        return GERMAN_TENS[tens]
    return ("ein" if unit == 1 else GERMAN_UNITS[unit]) + "und" + GERMAN_TENS[tens]


NUMBER_WORDS = {"French": french, "Spanish": spanish, "German": german}


def number_words(n: int, lang: str) -> str:
    """``n`` (0..99) in words in ``lang`` (French, Spanish or German)."""
    if not 0 <= n <= 99:
        raise ValueError(f"number {n}: the task world writes 0..99 in words")
    if lang not in NUMBER_WORDS:
        raise ValueError(f"language {lang!r}: expected one of {LANGS}")
    return NUMBER_WORDS[lang](n)


def translate(word: str, lang: str) -> str:
    """The lexicon's ``lang`` translation of the English ``word``."""
    if word not in LEXICON:
        raise ValueError(f"word {word!r} is not in the lexicon")
    return LEXICON[word][LANGS.index(lang)]


def make(template: str, rng: random.Random, canonical_only: bool = False) -> Task:
    """One instance of a multilingual template."""
    lang = rng.choice(LANGS)
    n, word = rng.randint(0, 99), rng.choice(sorted(LEXICON))
    fmt, flags = choose(rng, PHRASINGS[template], canonical_only)
    if template == "multilingual.number":
        reference, meta = number_words(n, lang), {"n": n, "lang": lang}
    else:
        reference, meta = translate(word, lang), {"word": word, "lang": lang}
    prompt = fmt.format(n=n, word=word, lang=lang)
    return Task("multilingual", template, prompt, reference, answer_line(reference), {**meta, **flags})


def corrupt(task: Task, rng: random.Random) -> str:
    """A wrong answer people make: a neighbouring number, another language, another word, lost capitals."""
    lang = task.meta["lang"]
    if task.template == "multilingual.number":
        n = task.meta["n"]
        candidates = [number_words(m, lang) for m in (n - 1, n + 1, n + 10, n - 10) if 0 <= m <= 99]
        candidates += [number_words(n, other) for other in LANGS if other != lang]
    else:
        word = task.meta["word"]
        candidates = [translate(word, other) for other in LANGS if other != lang]
        candidates += [translate(rng.choice(sorted(LEXICON)), lang), task.reference.lower(), word]
    return answer_line(rng.choice([c for c in candidates if c != task.reference]))


TEMPLATES = {name: make for name in PHRASINGS}
