"""Tasks: what a model is trained for (batch schema, model call, loss, metrics, best-checkpoint metric).

    from zoo.tasks import get_task
    task = get_task("classification")
    task.schema(model.config)          # {"inputs": ArraySpec((28, 28, 1), "float32"), "label": ArraySpec((), "int32")}
    loss = task.loss(task.apply(model.apply, variables, batch, train=False), batch)

``task_for(model_or_config)`` gives a model's task (the registry records it per model).
See ``zoo.tasks.base.Task`` for the interface and CONTRIBUTING.md for adding one.
"""

from zoo.tasks.base import EVAL_MASK, ArraySpec, Task, get_task, list_tasks, register_task, sums_to_host
from zoo.tasks.anomaly import ANOMALY_RECONSTRUCTION, ANOMALY_SVDD, ANOMALY_VAE
from zoo.tasks.causal_lm import CAUSAL_LM, CausalLM
from zoo.tasks.classification import (CLASSIFICATION, IGNORE_INDEX, QUESTION_ANSWERING, TOKEN_CLASSIFICATION,
                                      Classification, QuestionAnswering, TokenClassification, accuracy,
                                      cross_entropy_loss)
from zoo.tasks.synthesis import SPEECH_SYNTHESIS, SpeechSynthesis
from zoo.tasks.transcription import TRANSCRIPTION, Transcription, word_error_rate
from zoo.tasks.forecasting import FORECASTING
from zoo.tasks.recommendation import RANKING, RATING, RETRIEVAL
from zoo.tasks.seq2seq import SUMMARIZATION, TRANSLATION, Seq2Seq, text_metrics


def task_for(model_or_config) -> Task:
    """The task of a model (or model config), as the registry records it; checked against the config."""
    from zoo import registry

    config = getattr(model_or_config, "config", model_or_config)
    task = get_task(registry.task_name(config))
    task.check_model(config)
    return task


__all__ = ["RANKING", "RATING", "RETRIEVAL", "ANOMALY_RECONSTRUCTION", "ANOMALY_SVDD", "ANOMALY_VAE", "FORECASTING", "ArraySpec", "CAUSAL_LM", "CLASSIFICATION", "CausalLM", "Classification", "EVAL_MASK", "IGNORE_INDEX",
           "QUESTION_ANSWERING", "QuestionAnswering", "TOKEN_CLASSIFICATION", "Task", "TokenClassification",
           "accuracy", "cross_entropy_loss", "get_task", "list_tasks", "register_task", "sums_to_host",
           "task_for", "SPEECH_SYNTHESIS", "SpeechSynthesis", "TRANSCRIPTION", "Transcription", "word_error_rate",
           "SUMMARIZATION", "TRANSLATION", "Seq2Seq", "text_metrics"]
