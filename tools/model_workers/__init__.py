"""Model workers behind a queue: the describer on several (GPU) machines, requests batched across conversations.

- :mod:`.wire`: the JSON wire format (pydantic) between the service and the workers.
- :mod:`.worker`: :class:`DescriberWorker`, one worker without Ray: loads the describer once, describes a batch
  of requests of any conversations as one batched generation; refuses videos outside the shared data store.
- :mod:`.serve`: the Ray Serve application (one replica per worker; Serve queues, balances and batches);
  imported only by what starts workers (``artemis workers``): nothing else needs Ray.
- :mod:`.remote`: :class:`RemoteDescriber`, the describer of an API replica whose model runs on the workers.
"""

from tools.model_workers.remote import (
    DeadlinePassedError,
    ModelWorkerError,
    RemoteDescriber,
    WorkersUnavailableError,
)
from tools.model_workers.wire import (
    DescribeRequest,
    DescribeResponse,
    DescriptionOut,
    TargetIn,
    WorkerErrorOut,
)
from tools.model_workers.worker import DescriberWorker, WorkerConfig

__all__ = [
    "DeadlinePassedError",
    "DescribeRequest",
    "DescribeResponse",
    "DescriberWorker",
    "DescriptionOut",
    "ModelWorkerError",
    "RemoteDescriber",
    "TargetIn",
    "WorkerConfig",
    "WorkerErrorOut",
    "WorkersUnavailableError",
]
