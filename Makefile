# The two commands of the README. Both install what they need (into ~/.cache/chorus).
.PHONY: demo test lint

demo:  ## the main job: `chorus dev up trading`, the whole domain on one machine (DOMAIN=... for another)
	scripts/demo.sh

test:  ## every test, against a real Kafka, kube-apiserver and Flink mini-cluster
	scripts/test.sh
