"What the reference pipeline's steps share: the customer table's model, trained the same way everywhere."
import torch
from torch.utils.data import DataLoader, TensorDataset

from workbench.models import MLP, MLPConfig
from workbench.sources import tabular_inputs
from workbench.train import Learner

SCHEMA = ({"dtype": "float32", "shape": [None, 4]}, {"dtype": "float32", "shape": [None, 2]})
CONFIG = MLPConfig(in_features=4, hidden=[16], out_features=2)


def tensors(table):
    "Model inputs and labels of a customer table."
    return torch.tensor(tabular_inputs(table).to_numpy(), dtype=torch.float32), torch.tensor(table.label.to_numpy())


def held_out(table):
    "The evaluation rows: every fifth customer (by id), the same split in every step."
    return table.customer % 5 == 0


def held_out_predictions(model, table):
    "Class probabilities (NumPy) of `model` on `table`'s held-out rows, and their labels."
    x, y = tensors(table[held_out(table)])
    with torch.no_grad():
        return torch.softmax(model.eval()(x), -1).numpy(), y.numpy()


def train(table, epochs: int, seed: int, callbacks=(), device: str = "cpu") -> MLP:
    "The churn MLP trained on `table`'s rows."
    x, y = tensors(table)
    torch.manual_seed(seed)
    model = MLP(CONFIG)
    Learner(model, DataLoader(TensorDataset(x, y), 128, shuffle=True), lr=1e-2, device=device, callbacks=callbacks,
            seed=seed).fit(epochs)
    return model.cpu().eval()
