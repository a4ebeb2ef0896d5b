"""Generate code: a cryptographically random code (promo codes, vouchers) as an output."""

import secrets
import string

from pydantic import Field, model_validator

from server.i18n import N_
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params
from server.rules.context import RunContext

ALPHABETS = {
    "digits": string.digits,
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "special": "!#$%&*+-=?@^_",
}


class GenerateCodeParams(Params):
    length: int = Field(default=8, ge=4, le=64)
    """how many characters the code has"""
    digits: bool = True
    """it may hold digits"""
    lower: bool = False
    """it may hold lowercase letters"""
    upper: bool = True
    """it may hold uppercase letters"""
    special: bool = False
    """it may hold special characters"""

    @model_validator(mode="after")
    def _some_alphabet(self) -> "GenerateCodeParams":
        if not self.alphabet():
            raise ValueError("choose at least one alphabet: digits, lower, upper or special")
        return self

    def alphabet(self) -> str:
        return "".join(chars for name, chars in ALPHABETS.items() if getattr(self, name))


class GenerateCode(Action[GenerateCodeParams]):
    key = "generate_code"
    title = N_("Generate code")
    summary = N_("Makes a random code (a promo or booking code) for later rules to use.")
    gives = N_("the code")
    group = "element"
    Params = GenerateCodeParams
    outputs = ("code",)
    example = Example("Promo code", {"length": 8, "digits": True, "upper": True})
    database_only = True

    async def execute(self, ctx: RunContext, params: GenerateCodeParams) -> Done:
        alphabet = params.alphabet()
        return Done({"code": "".join(secrets.choice(alphabet) for _ in range(params.length))})

    def describe(self, params: GenerateCodeParams, names: Names = NO_NAMES) -> str:
        kinds = ", ".join(name for name in ALPHABETS if getattr(params, name))
        return f"Generates a {params.length}-character code ({kinds})"


ACTION = GenerateCode()
