// Command nab scores the anomaly detector on the Numenta Anomaly Benchmark.
package main

func main() {}
