"""The prompt, built once per problem and tokenized once; from then on only token ids move."""

from __future__ import annotations

INSTRUCTION = (
    "Solve the following problem. Reason step by step and separate consecutive steps "
    "with a blank line. Put the final answer in \\boxed{{}}.\n\n{question}"
)

CODE_INSTRUCTION = (
    "Solve the following programming problem. Reason step by step and separate consecutive steps "
    "with a blank line. End with one complete Python program in a ```python code block that reads "
    "standard input and writes standard output.\n\n{question}"
)

# Appended (as token ids) when RankGuide stops a collapsed trajectory: the writer completes the box.
FINAL_ANSWER_CUE = "Final answer: \\boxed{"


def prompt_ids(tokenizer, question: str, instruction: str = INSTRUCTION) -> list[int]:
    """Chat-template prompt (or a plain one for tokenizers without a template), as ids."""
    if not question or not question.strip():
        raise ValueError("the question is empty")
    content = instruction.format(question=question.strip())
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True
        )
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    return tokenizer.encode(f"{content}\n\nSolution:\n", add_special_tokens=True)


SCORING_REQUEST = (
    "Look at the last step of your reasoning above. How likely is it to be correct and useful? "
    "Answer with a single digit from 0 (certainly wrong) to 9 (certainly correct)."
)
SCORING_ANSWER_PREFIX = "Score: "

MENTOR_REQUEST_HEAD = "Here are two ways to continue your reasoning.\n\nOption A:"
MENTOR_REQUEST_MID = "\n\nOption B:"
MENTOR_REQUEST_TAIL = "\n\nWhich option is more likely to lead to the correct final answer? Answer A or B."
MENTOR_ANSWER_PREFIX = "Option"

_SENTINEL = "\x00TANDEM\x00"


def side_turn(tokenizer, request: str, answer_prefix: str) -> tuple[str, str]:
    """Text that closes the reasoning turn, asks ``request`` as the user and opens the answer with
    ``answer_prefix``, split at ``{request}`` so token ids can be spliced in the middle.

    Used for side questions (SpecReason's score, MentorCollab's self-verifier) asked on a forked
    cache on top of the reasoning: the reasoning itself is never re-encoded or resent.
    """
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Q"}, {"role": "assistant", "content": _SENTINEL},
             {"role": "user", "content": _SENTINEL}],
            tokenize=False, add_generation_prompt=True,
        )
        _, after_reasoning, after_request = rendered.split(_SENTINEL)
        return after_reasoning, after_request + answer_prefix
    return "\n\nUser: ", f"\nAssistant: {answer_prefix}"


def scoring_ids(tokenizer) -> list[int]:
    """SpecReason: the ids appended (on a fork) to ask the LRM for a 0-9 score of the last step."""
    head, tail = side_turn(tokenizer, SCORING_REQUEST, SCORING_ANSWER_PREFIX)
    return tokenizer.encode(head + SCORING_REQUEST + tail, add_special_tokens=False)


def mentor_ids(tokenizer, option_a: list[int], option_b: list[int]) -> list[int]:
    """MentorCollab self-verifier: the options' own ids spliced into the question (no re-encoding)."""
    head, tail = side_turn(tokenizer, "", MENTOR_ANSWER_PREFIX)
    enc = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    return enc(head + MENTOR_REQUEST_HEAD) + option_a + enc(MENTOR_REQUEST_MID) + option_b + enc(MENTOR_REQUEST_TAIL + tail)
