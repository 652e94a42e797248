"""Answer: evidence sentences, support checks, follow-ups, abstention and the optional LLM."""
