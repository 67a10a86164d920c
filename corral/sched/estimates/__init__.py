"""Apollo's estimates (corral/sched/README.md): runtimes, start-up costs, failure probabilities, the
wait-time matrix and estimated completion times. Pure: fed by the master's events."""

from corral.sched.estimates.completion import CompletionModel, TaskQuery, completion_s
from corral.sched.estimates.failures import FailureEstimator
from corral.sched.estimates.runtime import Estimate, RuntimeEstimator
from corral.sched.estimates.sketch import QuantileSketch, RunningMean, exact_quantile
from corral.sched.estimates.startup import StartupEstimator
from corral.sched.estimates.wait_matrix import MachineLoad, Occupant, WaitTimeMatrix, wait_until_fits

__all__ = ["CompletionModel", "Estimate", "FailureEstimator", "MachineLoad", "Occupant", "QuantileSketch",
           "RunningMean", "RuntimeEstimator", "StartupEstimator", "TaskQuery", "WaitTimeMatrix", "completion_s",
           "exact_quantile", "wait_until_fits"]
