# The board check's commands, run as root in the emulated board by scripts/board-check.sh
# (scripts/board-vm.sh --run): each case's output follows a "== case" line, for the host to
# judge. The registers hold one known load: 1.000 A through 0.1 ohm at a 5.000 V bus.
# SUMMARY_CSV, the run folder's summary file, comes from board-check.sh (scripts/run-folder.sh).
set -u
# i2c-stub with an INA219 at 0x40 (the patched stub computes its current and power registers)
# and an INA3221 at 0x41; SMBus words are little-endian, both chips big-endian.
modprobe i2c-stub chip_addr=0x40,0x41 ina219_addr=0x40
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
printf 'name = "board-check"\n[[backends]]\nkind = "tflite"\nmodel = "mobilenet_v2_1.0_224_quant"\nimage = "bird.bmp"\n[[sensors]]\nkind = "hwmon"\nrail = "VDD_IN"\nchip = "%s"\nchannel = 1\n' ina3221 > /tmp/hwmon-ina3221.toml

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
joulebench sensors --rig /tmp/hwmon-ina3221.toml 2>&1
echo "== end"
