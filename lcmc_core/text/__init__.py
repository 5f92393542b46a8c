"""The text side of CoMC: label sets and label extraction, the training corpus, its generators and the generation job.

``labels`` (the LabelSet machinery) and ``label_sets`` (VOC2007, EmojiVOC, COCO 2014, NUS-WIDE);
``prompts`` (template sets and the prompts built from them); ``corpus`` (the request plan,
records, JSONL storage, statistics); ``generators`` (template,
OpenAI-compatible and Hugging Face sentence writers behind one factory); ``validation`` (judging
an LLM answer); ``generation`` (the resumable, validated job that writes a corpus file);
``compound`` (SPARC's compound prompts: assignment to classes, coverage report, LLM requests and
their resumable file).
"""
