"""Model backends behind one narrow interface (a per-sequence Session): in-process Hugging Face now."""
