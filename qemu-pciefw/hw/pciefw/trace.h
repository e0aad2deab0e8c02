#include "trace/trace-hw_pciefw.h"
