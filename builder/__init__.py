"""builder: split news into sentences, label them in Label Studio, publish a Hugging Face dataset."""

__version__ = "0.1.0"
