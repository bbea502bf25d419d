"""Offline demo task: a rule-based English → Spanish/French/German sentence generator.

The generated pairs exercise what makes translation more than word substitution:

- reordering: adjectives follow the noun in Spanish/French ("the red car" → "el coche
  rojo"), French keeps a few adjectives in front ("petite maison"), German fronted dates
  force verb-second inversion ("on May 5 we buy ..." → "am fünften Mai kaufen wir ..."),
  and dates flip month/day order ("on May 5" → "el cinco de mayo").
- agreement: articles, adjectives and predicate adjectives agree in gender and number
  with the noun, verbs agree with the subject, German adjectives follow the
  strong/weak/mixed declension of their case and determiner.
- numbers: "twenty-two red cars" → "veintidós coches rojos", spelled by `num2words`
  in every language, so the model has to learn number words, not copy digits.

It is a demo task (small vocabulary, a few templates), not a benchmark; real data is the
`anki` and `multi30k` sources. `generate_pairs(n, "es", seed)` is deterministic.
"""

from __future__ import annotations

import random

from num2words import num2words

LANGUAGES = ("es", "fr", "de")

# english singular, english plural, then per language: (singular, plural, gender)
NOUNS = [
    ("car", "cars", {"es": ("coche", "coches", "m"), "fr": ("voiture", "voitures", "f"), "de": ("Auto", "Autos", "n")}),
    ("house", "houses", {"es": ("casa", "casas", "f"), "fr": ("maison", "maisons", "f"), "de": ("Haus", "Häuser", "n")}),
    ("book", "books", {"es": ("libro", "libros", "m"), "fr": ("livre", "livres", "m"), "de": ("Buch", "Bücher", "n")}),
    ("dog", "dogs", {"es": ("perro", "perros", "m"), "fr": ("chien", "chiens", "m"), "de": ("Hund", "Hunde", "m")}),
    ("cat", "cats", {"es": ("gato", "gatos", "m"), "fr": ("chat", "chats", "m"), "de": ("Katze", "Katzen", "f")}),
    ("apple", "apples", {"es": ("manzana", "manzanas", "f"), "fr": ("pomme", "pommes", "f"), "de": ("Apfel", "Äpfel", "m")}),
    ("table", "tables", {"es": ("mesa", "mesas", "f"), "fr": ("table", "tables", "f"), "de": ("Tisch", "Tische", "m")}),
    ("window", "windows", {"es": ("ventana", "ventanas", "f"), "fr": ("fenêtre", "fenêtres", "f"), "de": ("Fenster", "Fenster", "n")}),
    ("train", "trains", {"es": ("tren", "trenes", "m"), "fr": ("train", "trains", "m"), "de": ("Zug", "Züge", "m")}),
    ("station", "stations", {"es": ("estación", "estaciones", "f"), "fr": ("gare", "gares", "f"), "de": ("Bahnhof", "Bahnhöfe", "m")}),
    ("ticket", "tickets", {"es": ("billete", "billetes", "m"), "fr": ("billet", "billets", "m"), "de": ("Fahrkarte", "Fahrkarten", "f")}),
    ("letter", "letters", {"es": ("carta", "cartas", "f"), "fr": ("lettre", "lettres", "f"), "de": ("Brief", "Briefe", "m")}),
    ("city", "cities", {"es": ("ciudad", "ciudades", "f"), "fr": ("ville", "villes", "f"), "de": ("Stadt", "Städte", "f")}),
    ("bottle", "bottles", {"es": ("botella", "botellas", "f"), "fr": ("bouteille", "bouteilles", "f"), "de": ("Flasche", "Flaschen", "f")}),
    ("flower", "flowers", {"es": ("flor", "flores", "f"), "fr": ("fleur", "fleurs", "f"), "de": ("Blume", "Blumen", "f")}),
    ("key", "keys", {"es": ("llave", "llaves", "f"), "fr": ("clé", "clés", "f"), "de": ("Schlüssel", "Schlüssel", "m")}),
    ("chair", "chairs", {"es": ("silla", "sillas", "f"), "fr": ("chaise", "chaises", "f"), "de": ("Stuhl", "Stühle", "m")}),
]

# es/fr: (masc sg, fem sg, masc pl, fem pl, placed before the noun); de: the stem.
ADJECTIVES = [
    ("red", {"es": ("rojo", "roja", "rojos", "rojas", False), "fr": ("rouge", "rouge", "rouges", "rouges", False), "de": "rot"}),
    ("small", {"es": ("pequeño", "pequeña", "pequeños", "pequeñas", False), "fr": ("petit", "petite", "petits", "petites", True), "de": "klein"}),
    ("big", {"es": ("grande", "grande", "grandes", "grandes", False), "fr": ("grand", "grande", "grands", "grandes", True), "de": "groß"}),
    ("new", {"es": ("nuevo", "nueva", "nuevos", "nuevas", False), "fr": ("nouveau", "nouvelle", "nouveaux", "nouvelles", True), "de": "neu"}),
    ("old", {"es": ("viejo", "vieja", "viejos", "viejas", False), "fr": ("vieux", "vieille", "vieux", "vieilles", True), "de": "alt"}),
    ("green", {"es": ("verde", "verde", "verdes", "verdes", False), "fr": ("vert", "verte", "verts", "vertes", False), "de": "grün"}),
    ("white", {"es": ("blanco", "blanca", "blancos", "blancas", False), "fr": ("blanc", "blanche", "blancs", "blanches", False), "de": "weiß"}),
    ("black", {"es": ("negro", "negra", "negros", "negras", False), "fr": ("noir", "noire", "noirs", "noires", False), "de": "schwarz"}),
]

# english subject, third person singular?, index into the conjugation tables
SUBJECTS = [("I", False, 0), ("you", False, 1), ("he", True, 2), ("she", True, 3), ("we", False, 4), ("they", False, 5)]
SUBJECT_PRONOUNS = {
    "es": ("", "", "él", "ella", "", ""),  # Spanish drops the pronoun where the verb ending says it.
    "fr": ("je", "tu", "il", "elle", "nous", "ils"),
    "de": ("ich", "du", "er", "sie", "wir", "sie"),
}
# english verb, then I/you/he/she/we/they forms per language
VERBS = [
    ("see", {"es": ("veo", "ves", "ve", "ve", "vemos", "ven"), "fr": ("vois", "vois", "voit", "voit", "voyons", "voient"),
             "de": ("sehe", "siehst", "sieht", "sieht", "sehen", "sehen")}),
    ("buy", {"es": ("compro", "compras", "compra", "compra", "compramos", "compran"),
             "fr": ("achète", "achètes", "achète", "achète", "achetons", "achètent"),
             "de": ("kaufe", "kaufst", "kauft", "kauft", "kaufen", "kaufen")}),
    ("want", {"es": ("quiero", "quieres", "quiere", "quiere", "queremos", "quieren"),
              "fr": ("veux", "veux", "veut", "veut", "voulons", "veulent"),
              "de": ("will", "willst", "will", "will", "wollen", "wollen")}),
    ("have", {"es": ("tengo", "tienes", "tiene", "tiene", "tenemos", "tienen"), "fr": ("ai", "as", "a", "a", "avons", "ont"),
              "de": ("habe", "hast", "hat", "hat", "haben", "haben")}),
    ("sell", {"es": ("vendo", "vendes", "vende", "vende", "vendemos", "venden"),
              "fr": ("vends", "vends", "vend", "vend", "vendons", "vendent"),
              "de": ("verkaufe", "verkaufst", "verkauft", "verkauft", "verkaufen", "verkaufen")}),
]
MONTHS = [
    ("January", "enero", "janvier", "Januar"), ("February", "febrero", "février", "Februar"), ("March", "marzo", "mars", "März"),
    ("April", "abril", "avril", "April"), ("May", "mayo", "mai", "Mai"), ("June", "junio", "juin", "Juni"),
    ("July", "julio", "juillet", "Juli"), ("August", "agosto", "août", "August"), ("September", "septiembre", "septembre", "September"),
    ("October", "octubre", "octobre", "Oktober"), ("November", "noviembre", "novembre", "November"), ("December", "diciembre", "décembre", "Dezember"),
]
_DE_DEFINITE = {"nom": {"m": "der", "f": "die", "n": "das", "pl": "die"}, "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"}}
_DE_INDEFINITE = {"nom": {"m": "ein", "f": "eine", "n": "ein"}, "acc": {"m": "einen", "f": "eine", "n": "ein"}}
# Adjective endings after a definite article (weak) and after ein/eine (mixed).
_DE_WEAK = {"nom": {"m": "e", "f": "e", "n": "e", "pl": "en"}, "acc": {"m": "en", "f": "e", "n": "e", "pl": "en"}}
_DE_MIXED = {"nom": {"m": "er", "f": "e", "n": "es"}, "acc": {"m": "en", "f": "e", "n": "es"}}


def _number_words(n: int, lang: str) -> str:
    return num2words(n, lang=lang)


def _noun_phrase(rng: random.Random, lang: str, case: str) -> tuple[str, str, bool]:
    """(english, target, plural) for a determiner + optional adjective + noun."""
    en_sg, en_pl, forms = rng.choice(NOUNS)
    adjective = rng.choice(ADJECTIVES) if rng.random() < 0.8 else None
    kind = rng.choice(("the", "the", "a", "number"))
    number = 0
    if kind == "number":
        # n ending in 1 (21, 31, ...) would need gendered "veintiuna/vingt et une"; left out.
        number = rng.choice([n for n in range(2, 100) if n % 10 != 1 or n == 11])
    plural = kind == "number" or (kind == "the" and rng.random() < 0.5)
    noun_en = en_pl if plural else en_sg
    adj_en = adjective[0] + " " if adjective else ""
    determiner_en = {"the": "the", "a": "a", "number": _number_words(number, "en")}[kind]
    if kind == "a" and (adj_en or noun_en)[0] in "aeiou":
        determiner_en = "an"
    english = f"{determiner_en} {adj_en}{noun_en}"
    sg, pl, gender = forms[lang]
    noun = pl if plural else sg
    if lang in ("es", "fr"):
        if kind == "number":
            determiner = _number_words(number, lang)
        elif kind == "a":
            determiner = {"es": {"m": "un", "f": "una"}, "fr": {"m": "un", "f": "une"}}[lang][gender]
        else:
            table = {"es": {"m": "el", "f": "la", "mpl": "los", "fpl": "las"}, "fr": {"m": "le", "f": "la", "mpl": "les", "fpl": "les"}}
            determiner = table[lang][gender + ("pl" if plural else "")]
        words = [determiner]
        if adjective:
            m_sg, f_sg, m_pl, f_pl, before = adjective[1][lang]
            adj = {("m", False): m_sg, ("f", False): f_sg, ("m", True): m_pl, ("f", True): f_pl}[(gender, plural)]
            words += [adj, noun] if before else [noun, adj]
        else:
            words.append(noun)
        return english, " ".join(words), plural
    # German: the determiner picks the adjective declension (weak, mixed or strong).
    key = "pl" if plural else gender
    if kind == "number":
        determiner, ending = _number_words(number, "de"), "e"  # strong plural, nominative = accusative
    elif kind == "a":
        determiner, ending = _DE_INDEFINITE[case][gender], _DE_MIXED[case][gender]
    else:
        determiner, ending = _DE_DEFINITE[case][key], _DE_WEAK[case][key]
    words = [determiner] + ([adjective[1]["de"] + ending] if adjective else []) + [noun]
    return english, " ".join(words), plural


def _date(rng: random.Random, lang: str) -> tuple[str, str]:
    month = rng.randrange(12)
    day = rng.randint(1, 28)
    english = f"on {MONTHS[month][0]} {day}"
    if lang == "es":
        return english, f"el {'primero' if day == 1 else _number_words(day, 'es')} de {MONTHS[month][1]}"
    if lang == "fr":
        return english, f"le {'premier' if day == 1 else _number_words(day, 'fr')} {MONTHS[month][2]}"
    return english, f"am {num2words(day, lang='de', to='ordinal')}n {MONTHS[month][3]}"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _action(rng: random.Random, lang: str) -> tuple[str, str]:
    """Subject + verb + object, with an optional date in front or at the end."""
    subject_en, third_person, index = rng.choice(SUBJECTS)
    verb_en, conjugations = rng.choice(VERBS)
    object_en, object_tgt, _ = _noun_phrase(rng, lang, "acc")
    verb_en_form = ("has" if verb_en == "have" else verb_en + "s") if third_person else verb_en
    pronoun, verb = SUBJECT_PRONOUNS[lang][index], conjugations[lang][index]
    if lang == "fr" and pronoun == "je" and verb[0] in "aeiou":
        subject_verb = f"j'{verb}"
    else:
        subject_verb = f"{pronoun} {verb}".strip()
    english = f"{subject_en} {verb_en_form} {object_en}"
    target = f"{subject_verb} {object_tgt}"
    where = rng.choice(("none", "none", "front", "end"))
    if where != "none":
        date_en, date_tgt = _date(rng, lang)
        if where == "end":
            english, target = f"{english} {date_en}", f"{target} {date_tgt}"
        elif lang == "de":
            # Verb second: the fronted date pushes the subject behind the verb.
            english, target = f"{date_en} {english}", f"{date_tgt} {verb} {pronoun} {object_tgt}"
        else:
            english, target = f"{date_en}, {english}", f"{date_tgt}, {target}"
    return _capitalize(english) + ".", _capitalize(target) + "."


def _description(rng: random.Random, lang: str) -> tuple[str, str]:
    """"The red car is small." with the predicate adjective agreeing in es/fr."""
    while True:
        subject_en, subject_tgt, plural = _noun_phrase(rng, lang, "nom")
        if not subject_en.startswith(("a ", "an ")):
            break
    adjective = rng.choice(ADJECTIVES)
    english = f"{subject_en} {'are' if plural else 'is'} {adjective[0]}"
    if lang == "de":
        target = f"{subject_tgt} {'sind' if plural else 'ist'} {adjective[1]['de']}"
    else:
        gender = _gender_of(subject_tgt, lang)
        m_sg, f_sg, m_pl, f_pl, _ = adjective[1][lang]
        adj = {("m", False): m_sg, ("f", False): f_sg, ("m", True): m_pl, ("f", True): f_pl}[(gender, plural)]
        verb = {"es": ("es", "son"), "fr": ("est", "sont")}[lang][plural]
        target = f"{subject_tgt} {verb} {adj}"
    return _capitalize(english) + ".", _capitalize(target) + "."


def _gender_of(noun_phrase: str, lang: str) -> str:
    words = set(noun_phrase.split())
    for _, _, forms in NOUNS:
        sg, pl, gender = forms[lang]
        if sg in words or pl in words:
            return gender
    raise AssertionError(f"no noun in {noun_phrase!r}")


def _question(rng: random.Random, lang: str) -> tuple[str, str]:
    """"Where is the station?" → "¿Dónde está la estación?"."""
    while True:
        subject_en, subject_tgt, plural = _noun_phrase(rng, lang, "nom")
        if not subject_en.startswith(("a ", "an ")):
            break
    english = f"Where {'are' if plural else 'is'} {subject_en}?"
    verb = {"es": ("está", "están"), "fr": ("est", "sont"), "de": ("ist", "sind")}[lang][plural]
    opening = {"es": "¿Dónde", "fr": "Où", "de": "Wo"}[lang]
    return english, f"{opening} {verb} {subject_tgt}?"


def generate_pairs(num_examples: int, target_lang: str = "es", seed: int = 0) -> list[tuple[str, str]]:
    """`num_examples` distinct (english, target) pairs; the same seed gives the same list."""
    if target_lang not in LANGUAGES:
        raise ValueError(f"synthetic target language must be one of {LANGUAGES}, got {target_lang!r}")
    if num_examples < 1:
        raise ValueError(f"num_examples must be positive, got {num_examples}")
    rng = random.Random(f"synthetic-{target_lang}-{seed}")
    pairs: dict[str, str] = {}
    attempts = 0
    while len(pairs) < num_examples:
        attempts += 1
        if attempts > 50 * num_examples:
            break  # The grammar ran out of new sentences; return what exists.
        template = rng.choices((_action, _description, _question), weights=(6, 2, 2))[0]
        english, target = template(rng, target_lang)
        pairs.setdefault(english, target)
    return list(pairs.items())
