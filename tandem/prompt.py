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
