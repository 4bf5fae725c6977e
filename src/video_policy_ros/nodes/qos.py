"""QoS profiles shared by the nodes (high-rate sensor topics use rclpy's sensor-data profile)."""

from rclpy.qos import QoSDurabilityPolicy, QoSProfile

# /task is latched: a node that starts later still receives the current instruction.
TASK_QOS = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)

# Values that change rarely (a camera's calibrated pose): the same latching as /task.
LATCHED_QOS = TASK_QOS
# /episode/events is latched with a history: a recorder that starts after the sim world still gets "start".
EVENTS_QOS = QoSProfile(depth=10, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
