"""MJCF of the 1-DoF blimp: a vertical slide joint, an ellipsoid envelope with MuJoCo's ellipsoid fluid drag,
linear joint damping, buoyancy through ``gravcomp``, a motor actuator for the thrust and a downward rangefinder.

Added mass is folded into the body mass (MuJoCo's fluid forces are velocity-dependent only).
"""

from __future__ import annotations

import mujoco

from envs.blimp.params import GRAVITY, BlimpParameters

ENVELOPE_OFFSET = 0.45  # envelope centre above the gondola (rangefinder site), m


def gravcomp_for(net_weight: float, params: BlimpParameters) -> float:
    """Body ``gravcomp`` giving net weight ``net_weight`` N (positive: heavier than air)."""
    return 1.0 - net_weight / (params.mass * GRAVITY)


def blimp_mjcf(params: BlimpParameters) -> str:
    """MJCF text of the blimp for ``params`` (buoyancy starts neutral; set ``body_gravcomp`` per tick)."""
    a, b, c = params.semi_axes
    return f"""
<mujoco model="blimp_altitude">
  <option timestep="{params.physics_dt}" gravity="0 0 -{GRAVITY}" density="{params.air_density}"
          viscosity="{params.air_viscosity}" integrator="implicitfast"/>
  <worldbody>
    <light pos="0 -4 5" dir="0 1 -1" diffuse="0.8 0.8 0.8"/>
    <geom name="floor" type="plane" size="5 5 0.1" rgba="0.6 0.6 0.6 1"/>
    <body name="blimp" gravcomp="1">
      <joint name="z" type="slide" axis="0 0 1" range="{params.floor} {params.ceiling}" limited="true"
             damping="{params.linear_damping}"/>
      <geom name="envelope" type="ellipsoid" size="{a} {b} {c}" pos="0 0 {ENVELOPE_OFFSET}" mass="{params.mass}"
            fluidshape="ellipsoid" contype="0" conaffinity="0" rgba="0.85 0.85 0.9 1"/>
      <site name="lidar" zaxis="0 0 -1"/>
    </body>
  </worldbody>
  <actuator><motor name="vertical_thrust" joint="z" gear="1"/></actuator>
  <sensor>
    <rangefinder name="lidar" site="lidar" cutoff="{params.lidar_max}"/>
  </sensor>
</mujoco>
"""


def build_model(params: BlimpParameters) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(blimp_mjcf(params))
