"""An LSTM forecaster for multivariate time series: read the last `input_length` hours of all channels, predict the
next `horizon` hours of all channels at once (a direct multi-horizon forecast, no feedback of its own predictions).

    window x: (batch, input_length, channels), already standardised with the training split's mean and std
      subtract each channel's last observed value          (the forecast is a change from "now"; see below)
      LSTM, `layers` layers of `hidden` units, over the input_length steps
      final hidden state -> dropout -> linear -> (horizon x channels) changes
      add the last observed value back                     -> (batch, horizon, channels)

Why the last value is subtracted: the ETT series drift (the oil temperature of a transformer follows the seasons)
so a window's level is mostly unpredictable from the training data's levels, while its shape is. Forecasting the
change from the last observation (as NLinear does, Zeng et al., AAAI 2023) makes the untrained model the
"repeat the last value" baseline, and lets the LSTM learn only what it can add to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class LSTMConfig:
    channels: int = 7          # ETTh1: HUFL, HULL, MUFL, MULL, LUFL, LULL, OT
    input_length: int = 96     # hours read
    horizon: int = 96          # hours predicted
    hidden: int = 64
    layers: int = 1
    dropout: float = 0.0       # on the final hidden state, before the linear head


class LSTMForecaster(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.channels, config.hidden, num_layers=config.layers, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.horizon * config.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, input_length, channels) -> (batch, horizon, channels)."""
        last = x[:, -1:, :]
        _, (h, _) = self.lstm(x - last)
        change = self.head(self.dropout(h[-1])).view(len(x), self.config.horizon, self.config.channels)
        return last + change

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
