# The board check's commands, run as root in the emulated board by scripts/board-check.sh
# (scripts/board-vm.sh --run): each case's output follows a "== case" line, for the host to
# judge. The registers hold one known load: 1.000 A through 0.1 ohm at a 5.000 V bus.
# SUMMARY_CSV, the run folder's summary file, comes from board-check.sh (scripts/run-folder.sh).
set -u
# i2c-stub with an INA219 at 0x40 (the patched stub computes its current and power registers),
# an INA3221 at 0x41, and one at 0x42 that the device tree describes (board.dtsi: its channels
# labelled VDD_IN, VDD_CPU_GPU_CV and VDD_SOC, 5 mohm shunts), created with the bus; SMBus
# words are little-endian, both chips big-endian.
modprobe i2c-stub chip_addr=0x40,0x41,0x42 ina219_addr=0x40
# The labelled INA3221's load, before its driver binds (i2c-dev then refuses the address):
# 5.000 V and 1.000 A on VDD_IN, 4.960 V and 0.400 A on VDD_CPU_GPU_CV, 4.960 V and 0.240 A
# on VDD_SOC (shunt 40 uV, bus 8 mV a step, both shifted left by 3).
i2cset -y 0 0x42 0x01 0xe803 w   # 125 x 40 uV = 5.000 mV (1.000 A on 5 mohm)
i2cset -y 0 0x42 0x02 0x8813 w   # 625 x 8 mV = 5.000 V
i2cset -y 0 0x42 0x03 0x9001 w   # 50 x 40 uV = 2.000 mV (0.400 A)
i2cset -y 0 0x42 0x04 0x6013 w   # 620 x 8 mV = 4.960 V
i2cset -y 0 0x42 0x05 0xf000 w   # 30 x 40 uV = 1.200 mV (0.240 A)
i2cset -y 0 0x42 0x06 0x6013 w   # 4.960 V
i2cset -y 0 0x42 0x0f 0x0100 w   # mask/enable: conversion ready
modprobe ina2xx
modprobe ina3221
ina219_load() {
  i2cset -y 0 0x40 0x05 0x0010 w   # calibration 4096 (the value ina2xx writes)
  i2cset -y 0 0x40 0x01 0x1027 w   # shunt 10000 x 10 uV = 100.00 mV
  i2cset -y 0 0x40 0x02 0x1227 w   # bus 1250 x 4 mV = 5.000 V, CNVR set
}
cat > /tmp/ina219.toml <<RIG
name = "board-check"
[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"
[[sensors]]
kind = "ina219"
rail = "5V"
i2c_bus = "/dev/i2c-0"
address = ADDRESS
shunt_ohms = 0.1
max_current_a = 3.2
RIG
sed 's/ADDRESS/0x40/' /tmp/ina219.toml > /tmp/at40.toml
sed 's/ADDRESS/0x45/' /tmp/ina219.toml > /tmp/at45.toml
printf 'name = "board-check"\n[[backends]]\nkind = "tflite"\nmodel = "mobilenet_v2_1.0_224_quant"\nimage = "bird.bmp"\n[[sensors]]\nkind = "hwmon"\nrail = "5V"\nchip = "%s"\nchannel = 1\n' ina219 > /tmp/hwmon-ina219.toml

echo "== litert"
joulebench run --rig sim-cpu --runs 5 --out /tmp/run 2>&1 | tail -3
cat "/tmp/run/$SUMMARY_CSV"

echo "== ina2xx"
ina219_load
echo ina219 0x40 > /sys/bus/i2c/devices/i2c-0/new_device
hwmon=$(ls -d /sys/bus/i2c/devices/0-0040/hwmon/hwmon*)
echo 100000 > "$hwmon/shunt_resistor"
echo "power1_input $(cat "$hwmon/power1_input")"
joulebench sensors --detect 2>&1 | grep -i ina219
joulebench sensors --rig /tmp/hwmon-ina219.toml 2>&1

echo "== ebusy"
joulebench sensors --rig /tmp/at40.toml 2>&1

echo "== ours"
echo 0-0040 > /sys/bus/i2c/drivers/ina2xx/unbind
ina219_load
joulebench sensors --rig /tmp/at40.toml 2>&1

echo "== enxio"
joulebench sensors --rig /tmp/at45.toml 2>&1

echo "== eacces"
su board -s /bin/sh -c 'HOME=/tmp joulebench sensors --rig /tmp/at40.toml' 2>&1

echo "== ina3221"
i2cset -y 0 0x41 0x01 0xd007 w   # channel 1 shunt: 250 x 40 uV = 10.00 mV (1.000 A on 10 mohm)
i2cset -y 0 0x41 0x02 0x8813 w   # channel 1 bus: 625 x 8 mV = 5.000 V
i2cset -y 0 0x41 0x0f 0x0100 w   # mask/enable: conversion ready
echo ina3221 0x41 > /sys/bus/i2c/devices/i2c-0/new_device
hwmon=$(ls -d /sys/bus/i2c/devices/0-0041/hwmon/hwmon*)
echo "in1_input $(cat "$hwmon/in1_input") curr1_input $(cat "$hwmon/curr1_input") in4_input $(cat "$hwmon/in4_input")"
ls "$hwmon" | tr '\n' ' '; echo
# Two chips are named ina3221 now: this one's place among them in hwmonN order is the hwmon
# kind's chip_index.
index=$(for h in /sys/class/hwmon/hwmon*; do
  [ "$(cat "$h/name")" = ina3221 ] && echo "${h##*/hwmon} $(readlink -f "$h/device")"
done | sort -n | awk '/0-0041$/ { print NR - 1 }')
printf 'name = "board-check"\n[[backends]]\nkind = "tflite"\nmodel = "mobilenet_v2_1.0_224_quant"\nimage = "bird.bmp"\n[[sensors]]\nkind = "hwmon"\nrail = "VDD_IN"\nchip = "ina3221"\nchip_index = %s\nchannel = 1\n' "$index" > /tmp/hwmon-ina3221.toml
joulebench sensors --rig /tmp/hwmon-ina3221.toml 2>&1

echo "== ina3221-labels"
hwmon=$(ls -d /sys/bus/i2c/devices/0-0042/hwmon/hwmon*)
for n in 1 2 3; do
  echo "in${n}_label $(cat "$hwmon/in${n}_label") in${n}_input $(cat "$hwmon/in${n}_input") curr${n}_input $(cat "$hwmon/curr${n}_input")"
done
joulebench sensors --rig jetson-orin-nano 2>&1
echo "== end"
