"""Hook implementations: what this distribution gives fvc. No torch import here, so `fvc plugins` stays fast."""

from pydantic import BaseModel, ConfigDict, Field

from fvc_core.contract import hookimpl


class TinyCNNConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(8, ge=1, description="channels of the single conv layer")
    num_classes: int = Field(2, ge=2)


def build_tiny_cnn(config: TinyCNNConfig):
    from fvc_example_tiny.model import TinyCNN  # torch loads only when a model is built

    return TinyCNN(width=config.width, num_classes=config.num_classes)


@hookimpl
def register_models(register):
    register("tiny_cnn", build_tiny_cnn, config=TinyCNNConfig, description="one conv layer per frame, mean over frames")
