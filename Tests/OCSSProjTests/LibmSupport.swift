import Glibc

// libm as the reference for the core's own trigonometry.
func _sin(_ x: Double) -> Double { sin(x) }
func _cos(_ x: Double) -> Double { cos(x) }
func _asin(_ x: Double) -> Double { asin(x) }
