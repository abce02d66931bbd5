"""The resumable training state a checkpoint carries, as one small versioned structure."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import CheckpointError

__all__ = ["STATE_VERSION", "TrainingState"]

# Version 1: step, config (TrainConfig's fields by name), optimizer (Adam's state dict),
# encoder_grad_norm, shards (added later; a reader that ignores it continues the run as one
# process would). Files written before the version was recorded are version 1.
STATE_VERSION = 1


@dataclass
class TrainingState:
    step: int  # steps done
    config: dict  # TrainConfig fields by name (unknown ones ignored, missing ones default)
    optimizer: dict  # torch.optim.Adam.state_dict()
    encoder_grad_norm: float = 0.0  # of the last stylizing step (the auto-encoder rescaling)
    shards: int = 1  # of config.batch images per step: ranks * shards per rank (training.py)

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_checkpoint(cls, data: dict, path: object) -> TrainingState:
        """The state in a loaded checkpoint's data; CheckpointError when it has none."""
        state = data.get("training")
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
            raise CheckpointError(f"{path} holds a model but no training state to resume from")
        version = state.get("version", 1)
        if version != STATE_VERSION:
            raise CheckpointError(
                f"{path} has training state version {version!r}; this stylebank_fast resumes "
                f"version {STATE_VERSION}"
            )
        try:
            return cls(
                step=int(state["step"]),
                config=dict(state["config"]),
                optimizer=state["optimizer"],
                encoder_grad_norm=float(state.get("encoder_grad_norm", 0.0)),
                shards=int(state.get("shards", 1)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: the training state is damaged: {error}") from None

    @staticmethod
    def saved_config(data: dict) -> dict:
        """The settings a checkpoint was trained with ({} for a model without them)."""
        state = data.get("training")
        config = state.get("config") if isinstance(state, dict) else None
        return dict(config) if isinstance(config, dict) else {}
